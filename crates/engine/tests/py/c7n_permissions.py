"""Prints the IAM permissions Cloud Custodian declares for aws.s3 features.

usage: c7n_permissions.py < FEATURES.json

FEATURES.json is a list of {"kind": "filter" | "action" | "resource" | "output", "name",
"data"}: for a filter or an action, `data` is its policy entry; a resource prints the
resource manager's `get_permissions()`; an output prints c7n's S3Output `permissions`.
Prints one JSON object: {"<kind> <name>": [permissions, sorted]}.
"""

import json
import sys

from c7n.config import Config
from c7n.resources.aws import S3Output
from c7n.policy import Policy
from c7n.resources import load_resources


def policy(filters=(), actions=()):
    # An event mode, so `type: event` filters validate as c7n requires.
    data = {
        "name": "permissions",
        "resource": "aws.s3",
        "mode": {"type": "cloudtrail", "events": ["CreateBucket"]},
        "filters": list(filters),
        "actions": list(actions),
    }
    p = Policy(data, Config.empty())
    p.validate()
    return p.resource_manager


def main():
    load_resources(("aws.s3",))
    out = {}
    for f in json.load(sys.stdin):
        key = f"{f['kind']} {f['name']}"
        if f["kind"] == "filter":
            perms = policy(filters=[f["data"]]).filters[0].get_permissions()
        elif f["kind"] == "action":
            perms = policy(actions=[f["data"]]).actions[0].get_permissions()
        elif f["kind"] == "resource":
            perms = policy().get_permissions()
        elif f["kind"] == "output":
            perms = S3Output.permissions
        else:
            raise SystemExit(f"unknown kind {f['kind']}")
        out[key] = sorted(set(perms))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
