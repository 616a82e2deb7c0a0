"""Seeds and snapshots the moto state the driver tests and benchmark work on.

usage: moto_state.py seed SCENARIO [REGION]     prints the ids created, as JSON
       moto_state.py snapshot [REGION]          prints what a policy can change, as JSON
       moto_state.py seed-groups N [REGION]     N security groups open to SSH (benchmark)

Talks to the emulator named by AWS_ENDPOINT_URL with boto3. Each scenario creates the
resource an event will name and, beside it, decoys in the same state that only a policy
that listed the whole account could touch: their ids must never appear in any answer the
emulator gives to an event-mode run.

Scenarios: sg, ec2, iam-user, asg, all (sg + ec2 + iam-user + asg).
"""

import json
import sys

import boto3

OPEN_SSH = {
    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
}
HTTPS = {
    "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
}
AMI = "ami-12c6146b"  # one of moto's built-in images


def seed_sg(region):
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    out = {"decoy_sgs": []}
    for name in ["web-ssh-open", "decoy-ssh-1", "decoy-ssh-2", "decoy-ssh-3"]:
        sg = ec2.create_security_group(
            GroupName=name, Description="czero driver test %s" % name, VpcId=vpc["VpcId"])
        ec2.authorize_security_group_ingress(
            GroupId=sg["GroupId"], IpPermissions=[OPEN_SSH, HTTPS])
        if name == "web-ssh-open":
            out["sg"] = sg["GroupId"]
        else:
            out["decoy_sgs"].append(sg["GroupId"])
    out["vpc"] = vpc["VpcId"]
    return out


def seed_ec2(region):
    ec2 = boto3.client("ec2", region_name=region)
    out = {"decoy_instances": []}
    for name in ["launched", "decoy-1", "decoy-2"]:
        r = ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": name}]}])
        iid = r["Instances"][0]["InstanceId"]
        if name == "launched":
            out["instance"] = iid
        else:
            out["decoy_instances"].append(iid)
    return out


def seed_iam_user(region):
    iam = boto3.client("iam", region_name=region)
    out = {"decoy_users": []}
    for name in ["alice", "decoy-bob", "decoy-carol"]:
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        if name == "alice":
            out["user"] = name
            out["access_key"] = key["AccessKeyId"]
        else:
            out["decoy_users"].append(name)
    return out


def seed_asg(region):
    ec2 = boto3.client("ec2", region_name=region)
    asg = boto3.client("autoscaling", region_name=region)
    subnet = ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    ec2.create_launch_template(
        LaunchTemplateName="czero-web",
        LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})
    out = {"decoy_asgs": []}
    for name in ["web-asg", "decoy-asg"]:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=1, MaxSize=2, DesiredCapacity=1,
            LaunchTemplate={"LaunchTemplateName": "czero-web", "Version": "$Latest"},
            VPCZoneIdentifier=subnet["SubnetId"])
        if name == "web-asg":
            out["asg"] = name
            out["asg_instance"] = asg.describe_auto_scaling_groups(
                AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"][0][
                    "InstanceId"]
        else:
            out["decoy_asgs"].append(name)
    return out


SEEDS = {"sg": seed_sg, "ec2": seed_ec2, "iam-user": seed_iam_user, "asg": seed_asg}


def snapshot(region):
    """The state keyed by names, not ids (moto's ids differ between two seedings), so two
    runs on separately seeded states compare equal when they did the same thing."""
    ec2 = boto3.client("ec2", region_name=region)
    iam = boto3.client("iam", region_name=region)
    asg = boto3.client("autoscaling", region_name=region)
    sgs = {}
    for sg in ec2.describe_security_groups()["SecurityGroups"]:
        perms = []
        for p in sg.get("IpPermissions", []):
            for r in p.get("IpRanges", []):
                perms.append("%s:%s-%s:%s" % (
                    p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), r["CidrIp"]))
        sgs[sg["GroupName"]] = {
            "ingress": sorted(perms),
            "tags": sorted((t["Key"], t["Value"]) for t in sg.get("Tags", [])),
        }
    instances = {}
    for res in ec2.describe_instances()["Reservations"]:
        for i in res["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            name = tags.get("Name") or "asg:%s" % tags.get("aws:autoscaling:groupName")
            instances[name] = {
                "state": i["State"]["Name"],
                "tags": sorted((k, v) for k, v in tags.items() if not k.startswith("aws:")),
            }
    users = {}
    for u in iam.list_users()["Users"]:
        keys = iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]
        users[u["UserName"]] = sorted(k["Status"] for k in keys)
    groups = {}
    for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        groups[g["AutoScalingGroupName"]] = sorted(
            (t["Key"], t["Value"]) for t in g.get("Tags", []))
    return {"security_groups": sgs, "instances": instances, "users": users, "asgs": groups}


def main():
    cmd = sys.argv[1]
    if cmd == "seed":
        scenario = sys.argv[2]
        region = sys.argv[3] if len(sys.argv) > 3 else "us-east-1"
        out = {}
        for name in (list(SEEDS) if scenario == "all" else [scenario]):
            out.update(SEEDS[name](region))
        print(json.dumps(out))
    elif cmd == "seed-groups":
        region = sys.argv[3] if len(sys.argv) > 3 else "us-east-1"
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.describe_vpcs(
            Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        groups = []
        for i in range(int(sys.argv[2])):
            g = ec2.create_security_group(
                GroupName="bench-%03d" % i, Description="czero benchmark", VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[OPEN_SSH, HTTPS])
            groups.append(g)
        print(json.dumps({"groups": groups}))
    elif cmd == "snapshot":
        region = sys.argv[2] if len(sys.argv) > 2 else "us-east-1"
        print(json.dumps(snapshot(region), sort_keys=True))
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main()
