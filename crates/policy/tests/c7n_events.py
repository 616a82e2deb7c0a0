"""Resolves resource ids from events with c7n's own code; prints one result per case.

stdin: JSON list of {"mode": {...}, "event": {...}}; stdout: JSON list of id lists or "error".
cloudtrail: CloudWatchEvents.get_ids; hub-finding/hub-action: SecurityHub.resolve_findings
and, for aws.s3, the resource part of the s3 ARNs (as SecurityHub.resolve_resources).
"""
import json
import sys

from c7n.cwe import CloudWatchEvents
from c7n.resources.aws import Arn
from c7n.policy import execution
from c7n.resources import securityhub  # noqa: F401 (registers the hub modes)

SecurityHub = execution["hub-finding"]

results = []
for case in json.load(sys.stdin):
    mode, event = case["mode"], case["event"]
    try:
        if mode["type"] == "cloudtrail":
            results.append(CloudWatchEvents.get_ids(event, mode))
        else:
            arns = SecurityHub.resolve_findings(None, event["detail"]["findings"])
            parsed = {Arn.parse(a) for a in arns}
            results.append(sorted({a.resource for a in parsed if a.service == "s3"}))
    except Exception:
        results.append("error")
print(json.dumps(results))
