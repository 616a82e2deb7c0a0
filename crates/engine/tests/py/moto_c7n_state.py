"""Seeds and snapshots the moto state of the differential test beyond S3 (security groups,
instances, IAM users, EBS snapshots).

usage: moto_c7n_state.py serve              JSON-line commands on stdin, one answer a line
       moto_c7n_state.py seed               resets moto, seeds, prints the resources
       moto_c7n_state.py snapshot           prints what a policy can change

Commands for `serve`: {"cmd": "seed"} and {"cmd": "snapshot"}; each answer is
{"ok": RESULT} or {"error": MESSAGE}. One long-lived process saves boto3's import per call.

`seed` resets the emulator named by AWS_ENDPOINT_URL, seeds moto's random generator (so two
seedings create the same ids, and the built-in AMIs' snapshots come out alike), then creates
every resource below, and answers {"resources": {TYPE: {NAME: ID}}} for the four c7n
resource types. Each group of resources holds one that an event names and, beside it, decoys
in the same state that only a policy listing the whole account could touch.

`snapshot` answers the state keyed by names, not ids: ingress rules and tags of every
security group; state, IMDS token setting and tags of every instance; access-key statuses
and tags of every IAM user; volume permissions and tags of every snapshot this account owns.
"""

import json
import os
import sys
import urllib.request

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
AMI = "ami-12c6146b"  # one of moto's built-in images
RANDOM_SEED = 4242

OPEN_SSH = {
    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
}
OFFICE_SSH = {
    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
    "IpRanges": [{"CidrIp": "203.0.113.0/24"}],
}
HTTPS = {
    "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
}

# name: (ingress rules, tags)
GROUPS = {
    "web-ssh-open": ([OPEN_SSH, HTTPS], {"Env": "prod"}),
    "decoy-ssh-1": ([OPEN_SSH, HTTPS], {"Team": "web"}),
    "decoy-ssh-2": ([OPEN_SSH, HTTPS], {}),
    "decoy-ssh-3": ([OPEN_SSH, HTTPS], {}),
    "ssh-office": ([OFFICE_SSH], {"Team": "ops"}),
    "internal-https": ([HTTPS], {}),
}

# name: (IMDS tokens, tags besides Name, stopped)
INSTANCES = {
    "launched": ("optional", {}, False),
    "decoy-1": ("optional", {}, False),
    "decoy-2": ("optional", {}, False),
    "imdsv2-owned": ("required", {"Owner": "platform"}, False),
    "dev-box": ("optional", {"Env": "dev", "Owner": "dev-team"}, False),
    "dev-stopped": ("optional", {"Env": "dev", "Owner": "dev-team"}, True),
}

# name: (statuses of its access keys, tags)
USERS = {
    "alice": (["Active"], {}),
    "decoy-bob": (["Active"], {}),
    "decoy-carol": (["Active"], {"Team": "data"}),
    "dave": (["Active", "Inactive"], {"Team": "ops"}),
    "erin": (["Inactive"], {}),
    "frank": ([], {}),
}

# name: (createVolumePermission groups, user ids, tags besides Name)
SNAPSHOTS = {
    "public-a": (["all"], [], {}),
    "public-b": (["all"], ["111122223333"], {"Team": "data"}),
    "partner-shared": ([], ["111122223333"], {}),
    "trusted-shared": ([], ["444455556666"], {}),
    "private": ([], [], {"Team": "data"}),
}


def tag_list(tags):
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def moto_api(path):
    endpoint = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
    req = urllib.request.Request(endpoint + path, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError("moto %s: %s" % (path, resp.status))


class State:
    def __init__(self):
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.iam = boto3.client("iam", region_name=REGION)

    def seed(self):
        moto_api("/moto-api/reset")
        moto_api("/moto-api/seed?a=%d" % RANDOM_SEED)
        ec2, iam = self.ec2, self.iam
        out = {"aws.security-group": {}, "aws.ec2": {}, "aws.iam-user": {},
               "aws.ebs-snapshot": {}}

        vpc = ec2.describe_vpcs(
            Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        for name, (rules, tags) in GROUPS.items():
            kwargs = {}
            if tags:
                kwargs["TagSpecifications"] = [
                    {"ResourceType": "security-group", "Tags": tag_list(tags)}]
            gid = ec2.create_security_group(
                GroupName=name, Description="czero differential %s" % name, VpcId=vpc,
                **kwargs)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=rules)
            out["aws.security-group"][name] = gid
        for g in ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]:
            out["aws.security-group"]["default"] = g["GroupId"]

        for name, (tokens, tags, stopped) in INSTANCES.items():
            r = ec2.run_instances(
                ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                MetadataOptions={"HttpTokens": tokens},
                # boto3 fills a random idempotency token in otherwise; the document keeps it.
                ClientToken="czero-differential-%s" % name,
                TagSpecifications=[{"ResourceType": "instance",
                                    "Tags": tag_list(dict(tags, Name=name))}])
            iid = r["Instances"][0]["InstanceId"]
            if stopped:
                ec2.stop_instances(InstanceIds=[iid])
            out["aws.ec2"][name] = iid

        for name, (statuses, tags) in USERS.items():
            kwargs = {"Tags": tag_list(tags)} if tags else {}
            iam.create_user(UserName=name, **kwargs)
            for status in statuses:
                key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
                if status != "Active":
                    iam.update_access_key(UserName=name, AccessKeyId=key, Status=status)
            out["aws.iam-user"][name] = name

        volume = ec2.create_volume(
            AvailabilityZone="%sa" % REGION, Size=8,
            TagSpecifications=[{"ResourceType": "volume",
                                "Tags": tag_list({"Name": "data"})}])["VolumeId"]
        for name, (groups, users, tags) in SNAPSHOTS.items():
            sid = ec2.create_snapshot(
                VolumeId=volume, Description="czero differential %s" % name,
                TagSpecifications=[{"ResourceType": "snapshot",
                                    "Tags": tag_list(dict(tags, Name=name))}])["SnapshotId"]
            if groups or users:
                # The legacy parameters: moto reads these on every version.
                ec2.modify_snapshot_attribute(
                    SnapshotId=sid, Attribute="createVolumePermission",
                    OperationType="add", GroupNames=groups, UserIds=users)
            out["aws.ebs-snapshot"][name] = sid
        return {"resources": out}

    def snapshot(self):
        ec2, iam = self.ec2, self.iam
        groups = {}
        for g in ec2.describe_security_groups()["SecurityGroups"]:
            rules = []
            for p in g.get("IpPermissions", []):
                for r in p.get("IpRanges", []):
                    rules.append("%s:%s-%s:%s" % (
                        p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), r["CidrIp"]))
            groups[g["GroupName"]] = {
                "ingress": sorted(rules),
                "tags": sorted((t["Key"], t["Value"]) for t in g.get("Tags", [])),
            }
        instances = {}
        for res in ec2.describe_instances()["Reservations"]:
            for i in res["Instances"]:
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                instances[tags.get("Name", i["InstanceId"])] = {
                    "state": i["State"]["Name"],
                    "http_tokens": i.get("MetadataOptions", {}).get("HttpTokens"),
                    "tags": sorted(tags.items()),
                }
        users = {}
        for u in iam.list_users()["Users"]:
            name = u["UserName"]
            keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            tags = iam.list_user_tags(UserName=name)["Tags"]
            users[name] = {
                "keys": sorted(k["Status"] for k in keys),
                "tags": sorted((t["Key"], t["Value"]) for t in tags),
            }
        snapshots = {}
        pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=[ACCOUNT])
        for s in (s for page in pages for s in page["Snapshots"]):
            # moto ignores OwnerIds: its built-in AMIs' snapshots belong to other accounts.
            if s["OwnerId"] != ACCOUNT:
                continue
            tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
            perms = ec2.describe_snapshot_attribute(
                SnapshotId=s["SnapshotId"],
                Attribute="createVolumePermission")["CreateVolumePermissions"]
            snapshots[tags.get("Name", s["SnapshotId"])] = {
                "volume_permissions": sorted(
                    "group:%s" % p["Group"] if "Group" in p else "user:%s" % p["UserId"]
                    for p in perms),
                "tags": sorted(tags.items()),
            }
        return {"security_groups": groups, "instances": instances, "users": users,
                "snapshots": snapshots}


def serve(state):
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)["cmd"]
            if cmd == "seed":
                answer = {"ok": state.seed()}
            elif cmd == "snapshot":
                answer = {"ok": state.snapshot()}
            else:
                answer = {"error": "unknown command %r" % cmd}
        except Exception as e:  # the test shows it with the command that failed
            answer = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(answer, sort_keys=True), flush=True)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    state = State()
    if cmd == "serve":
        serve(state)
    elif cmd == "seed":
        print(json.dumps(state.seed(), sort_keys=True))
    elif cmd == "snapshot":
        print(json.dumps(state.snapshot(), sort_keys=True))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
