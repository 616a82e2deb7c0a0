"""moto's server, plus the few APIs custodian-zero's stack needs that moto lacks.

Run as `python integration/moto/server.py --host 127.0.0.1 --port PORT`.

Gap fixed here (moto 5.2.x): Application Auto Scaling has no ListTagsForResource or
TagResource, so Terraform's `aws_appautoscaling_target` retries forever. We keep tags in
memory per resource ARN, which is all Terraform needs to read back what it wrote.
"""

import json
import sys
from collections import defaultdict

from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.server import main

_TAGS = defaultdict(dict)


def _list_tags_for_resource(self):
    arn = json.loads(self.body or "{}").get("ResourceARN", "")
    return json.dumps({"Tags": _TAGS[arn]})


def _tag_resource(self):
    body = json.loads(self.body or "{}")
    _TAGS[body.get("ResourceARN", "")].update(body.get("Tags", {}))
    return json.dumps({})


def _untag_resource(self):
    body = json.loads(self.body or "{}")
    tags = _TAGS[body.get("ResourceARN", "")]
    for key in body.get("TagKeys", []):
        tags.pop(key, None)
    return json.dumps({})


for name, fn in [
    ("list_tags_for_resource", _list_tags_for_resource),
    ("tag_resource", _tag_resource),
    ("untag_resource", _untag_resource),
]:
    if not hasattr(ApplicationAutoScalingResponse, name):
        setattr(ApplicationAutoScalingResponse, name, fn)

if __name__ == "__main__":
    main(sys.argv[1:])
