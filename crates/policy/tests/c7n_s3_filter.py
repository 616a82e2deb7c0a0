"""Evaluates aws.s3 filters with c7n's own classes over given (already annotated) buckets.

stdin: JSON list of {"filter": ..., "resource": ...}; stdout: JSON list of true/false/"error".
The buckets carry `c7n:bucket-encryption` / `c7n:PublicAccessBlock`, so c7n makes no calls.
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
        p = Policy({"name": "t", "resource": "aws.s3", "filters": [case["filter"]]}, config)
        p.validate()
        f = p.resource_manager.filters[0]
        results.append(bool(f.process([case["resource"]])))
    except Exception:
        results.append("error")
print(json.dumps(results))
