"""Runs a policy's filters with c7n's own resource manager over given buckets, as a policy
run does (`filter_resources`: top-level filters in order, `or`/`and`/`not` through their
set-based `process` and annotation sweeper), and prints the matched buckets with the
annotations c7n left on them.

stdin: JSON list of {"filters": [...], "resources": [...]}; stdout: JSON list of
{"matched": [bucket, ...]} sorted by Name, or "error". The buckets carry
`c7n:bucket-encryption` / `c7n:PublicAccessBlock`, so c7n makes no calls.
"""
import json
import logging
import os
import sys

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
logging.disable(logging.CRITICAL)

from c7n.config import Config  # noqa: E402
from c7n.policy import Policy  # noqa: E402
from c7n.resources import load_resources  # noqa: E402

load_resources(("aws.s3",))
config = Config.empty(region="us-east-1", account_id="123456789012")
results = []
for case in json.load(sys.stdin):
    try:
        p = Policy({"name": "t", "resource": "aws.s3", "filters": case["filters"]}, config)
        p.validate()
        matched = p.resource_manager.filter_resources(case["resources"])
        results.append({"matched": sorted(matched, key=lambda r: r["Name"])})
    except Exception:
        results.append("error")
print(json.dumps(results))
