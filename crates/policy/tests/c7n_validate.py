"""Validates policy files the way `custodian validate` does; prints ok/error per file.

argv: policy files; stdout: JSON object file -> "ok" | "error: <message>".
"""
import json
import logging
import sys

logging.disable(logging.CRITICAL)

from c7n.config import Config  # noqa: E402
from c7n.policy import Policy  # noqa: E402
from c7n.resources import load_resources  # noqa: E402
from c7n.schema import generate, validate  # noqa: E402
from c7n.structure import StructureParser  # noqa: E402
from c7n.utils import yaml_load  # noqa: E402

load_resources(("aws.*",))
schema = generate()
config = Config.empty(region="us-east-1", account_id="123456789012")
out = {}
for path in sys.argv[1:]:
    try:
        with open(path) as fh:
            data = yaml_load(fh.read())
        StructureParser().validate(data)
        errors = validate(data, schema)
        if errors:
            raise ValueError(str(errors[0])[:200])
        for p in data["policies"]:
            Policy(p, config).validate()
        out[path] = "ok"
    except Exception as e:  # any failure is a rejection
        out[path] = "error: %s" % str(e).splitlines()[0][:200] if str(e) else "error: %s" % type(e).__name__
print(json.dumps(out))
