"""moto's server, plus the few APIs custodian-zero's stack needs that moto lacks.

Run as `python integration/moto/server.py --host 127.0.0.1 --port PORT`.

Gaps fixed here (moto 5.2.x):

- Application Auto Scaling has no ListTagsForResource or TagResource, so Terraform's
  `aws_appautoscaling_target` retries forever. We keep tags in memory per resource ARN,
  which is all Terraform needs to read back what it wrote.
- EventBridge's TestEventPattern is a stub that answers nothing. We answer it with moto's
  own pattern matcher (the one it uses to route PutEvents), so a test can ask whether a
  deployed rule matches an event.
- With IAM enforcement on (`POST /moto-api/reset-auth`), moto authorizes some calls under
  names IAM does not use, or against `*` instead of the resource. We make the calls
  custodian-zero makes ask for what AWS asks for:
  * S3 `?encryption`, `?publicAccessBlock`, `?replication`, `?ownershipControls` fall
    through moto's table to ListBucket (GET), CreateBucket (PUT) or DeleteBucket
    (DELETE); AWS authorizes them with s3:GetEncryptionConfiguration /
    s3:PutEncryptionConfiguration and friends.
  * A PutObject with an `x-amz-acl` header also needs s3:PutObjectAcl.
  * DeleteObjects is authorized per object (s3:DeleteObject on `bucket/key`, and
    s3:DeleteObjectVersion for keys given with a version id), not on the bucket.
  * SQS batch calls are authorized by their single-message actions (SendMessageBatch by
    sqs:SendMessage, and so on): IAM has no `sqs:*Batch` actions.
  * ECS DescribeServices and UpdateService are authorized against the service's ARN.
  Everything else moto still authorizes its own way (KMS, for one, always against `*`).
- EC2 ModifySnapshotAttribute reads only the legacy `UserIds`/`GroupNames` parameters, so a
  `CreateVolumePermission={Add|Remove: [{Group|UserId}]}` request (what Cloud Custodian's
  ebs-snapshot `set-permissions` sends) silently changes nothing; ResetSnapshotAttribute
  answers 500. We apply both structures, and reset clears the snapshot's volume permissions.
"""

import json
import sys
from collections import defaultdict
from urllib.parse import parse_qs, urlparse

from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.core.responses import EmptyResult
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events.models import EventPattern
from moto.events.responses import EventsHandler
from moto.iam import access_control
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


def _test_event_pattern(self):
    pattern = EventPattern.load(self._get_param("EventPattern"))
    event = json.loads(self._get_param("Event") or "{}")
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


EventsHandler.test_event_pattern = _test_event_pattern


# IAM enforcement: the names AWS authorizes these calls with.
_SQS_BATCH = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}

# Sub-resource: (action for GET, action for PUT and DELETE).
_S3_SUBRESOURCES = {
    "encryption": ("s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration"),
    "publicAccessBlock": (
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
    ),
    "replication": (
        "s3:GetReplicationConfiguration",
        "s3:PutReplicationConfiguration",
    ),
    "ownershipControls": (
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
    ),
}

_check_action_permitted = access_control.IAMRequestBase.check_action_permitted


def _iam_check(self, resource):
    self._action = _SQS_BATCH.get(self._action, self._action)
    return _check_action_permitted(self, resource)


def _s3_check(self, resource):
    query = parse_qs(urlparse(self._path).query, keep_blank_values=True)
    headers = {k.lower(): v for k, v in self._headers.items()}
    checks = [(self._action, resource)]
    for sub, (read, write) in _S3_SUBRESOURCES.items():
        if sub in query:
            checks = [(read if self._method == "GET" else write, resource)]
    if self._method == "POST" and "delete" in query:
        body = self._body.decode("utf-8", "replace") if isinstance(self._body, bytes) else str(self._body or "")
        checks = [("s3:DeleteObject", f"{resource}/*")]
        if "<VersionId>" in body:
            checks.append(("s3:DeleteObjectVersion", f"{resource}/*"))
    is_object = resource.split(":::", 1)[-1].count("/") > 0
    if self._method == "PUT" and is_object and "x-amz-acl" in headers and "acl" not in query:
        checks.append(("s3:PutObjectAcl", resource))
    for action, res in checks:
        self._action = action if action.startswith("s3:") else f"s3:{action}"
        _check_action_permitted(self, res)


access_control.IAMRequest.check_action_permitted = _iam_check
access_control.S3IAMRequest.check_action_permitted = _s3_check


def _ecs_resource(self):
    action = self._get_action()
    if action not in ("DescribeServices", "UpdateService"):
        return "*"
    cluster = str(self._get_param("cluster", "default") or "default").split("/")[-1]
    service = self._get_param("service") if action == "UpdateService" else None
    if service is None:
        services = self._get_param("services", []) or []
        service = services[0] if services else "*"
    if str(service).startswith("arn:"):
        return service
    return f"arn:aws:ecs:{self.region}:{self.current_account}:service/{cluster}/{service}"


EC2ContainerServiceResponse._determine_resource = _ecs_resource

_modify_snapshot_attribute = ElasticBlockStore.modify_snapshot_attribute


def _modify_snapshot_attribute_structured(self):
    result = _modify_snapshot_attribute(self)
    snapshot_id = self._get_param("SnapshotId")
    permission = self._get_param("CreateVolumePermission") or {}
    for op, apply in [
        ("Add", self.ec2_backend.add_create_volume_permission),
        ("Remove", self.ec2_backend.remove_create_volume_permission),
    ]:
        items = permission.get(op) or []
        user_ids = [i["UserId"] for i in items if i.get("UserId")]
        groups = [i["Group"] for i in items if i.get("Group")]
        if user_ids or groups:
            apply(snapshot_id, user_ids=user_ids, groups=groups)
    return result


def _reset_snapshot_attribute(self):
    self.error_on_dryrun()
    snapshot = self.ec2_backend.get_snapshot(self._get_param("SnapshotId"))
    snapshot.create_volume_permission_userids.clear()
    snapshot.create_volume_permission_groups.clear()
    return EmptyResult()


ElasticBlockStore.modify_snapshot_attribute = _modify_snapshot_attribute_structured
ElasticBlockStore.reset_snapshot_attribute = _reset_snapshot_attribute

if __name__ == "__main__":
    main(sys.argv[1:])
