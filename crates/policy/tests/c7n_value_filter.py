"""Evaluates filter cases with c7n's own filter classes; prints one result per case.

stdin: JSON list of {"filter": ..., "resource": ...}; stdout: JSON list of true/false/"error".
"""
import json
import sys

from c7n.filters.core import FilterRegistry

registry = FilterRegistry("czero-check")
results = []
for case in json.load(sys.stdin):
    try:
        f = registry.factory(case["filter"], None)
        f.validate()
        results.append(bool(f.process([case["resource"]])))
    except Exception:  # c7n raises: the policy run fails
        results.append("error")
print(json.dumps(results))
