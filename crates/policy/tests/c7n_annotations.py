"""Runs a policy's filters with c7n's own resource manager over given buckets, as a policy
run does (`filter_resources`: top-level filters in order, `or`/`and`/`not` through their
set-based `process` and annotation sweeper), and prints the matched buckets with the
annotations c7n left on them.

stdin: JSON list of {"filters": [...], "resources": [...], "lazy": {name: {"encryption":
doc | null | "denied", "public_block": doc | null | "denied"}}, "kms": {key: {"KeyId",
"Arn", "Aliases": [{"AliasArn", "AliasName"}]}}}; stdout: JSON list of {"matched":
[bucket, ...]} sorted by Name, or "error". `lazy` answers the calls c7n's bucket-encryption
and check-public-block filters make (null: the NoSuch* error) and `kms` its DescribeKey and
ListAliases calls (a key not listed: NotFoundException), through stand-ins for
`bucket_client` and the KMS client; nothing reaches the network.
"""
import json
import logging
import os
import sys

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
logging.disable(logging.CRITICAL)

from botocore.exceptions import ClientError  # noqa: E402
from c7n.config import Config  # noqa: E402
from c7n.policy import Policy  # noqa: E402
from c7n.resources import load_resources  # noqa: E402
import c7n.resources.s3 as c7n_s3  # noqa: E402

LAZY = {}
KMS = {}


def error(code, op):
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


class Client:
    def get_bucket_encryption(self, Bucket):
        doc = LAZY[Bucket]["encryption"]
        if doc == "denied":
            raise error("AccessDenied", "GetBucketEncryption")
        if doc is None:
            raise error("ServerSideEncryptionConfigurationNotFoundError", "GetBucketEncryption")
        return json.loads(json.dumps(doc))

    def get_public_access_block(self, Bucket):
        doc = LAZY[Bucket]["public_block"]
        if doc == "denied":
            raise error("AccessDenied", "GetPublicAccessBlock")
        if doc is None:
            raise error("NoSuchPublicAccessBlockConfiguration", "GetPublicAccessBlock")
        return {"PublicAccessBlockConfiguration": dict(doc)}


class KmsClient:
    def describe_key(self, KeyId):
        if KeyId not in KMS:
            raise error("NotFoundException", "DescribeKey")
        k = KMS[KeyId]
        return {"KeyMetadata": {"KeyId": k["KeyId"], "Arn": k["Arn"], "KeyManager": "CUSTOMER"}}

    def list_aliases(self, KeyId):
        for k in KMS.values():
            if k["KeyId"] == KeyId:
                return {"Aliases": k["Aliases"]}
        return {"Aliases": []}


class Session:
    def client(self, service, region_name=None):
        assert service == "kms", service
        return KmsClient()


c7n_s3.bucket_client = lambda session, b, kms=False: Client()
c7n_s3.local_session = lambda factory: Session()

load_resources(("aws.s3",))
config = Config.empty(region="us-east-1", account_id="123456789012")
results = []
for case in json.load(sys.stdin):
    LAZY.clear()
    LAZY.update(case.get("lazy", {}))
    KMS.clear()
    KMS.update(case.get("kms", {}))
    try:
        p = Policy({"name": "t", "resource": "aws.s3", "filters": case["filters"]}, config)
        p.validate()
        matched = p.resource_manager.filter_resources(case["resources"])
        results.append({"matched": sorted(matched, key=lambda r: r["Name"])})
    except Exception:
        results.append("error")
print(json.dumps(results))
