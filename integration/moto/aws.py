"""The few AWS calls the integration tests make that the workspace has no Rust SDK for (IAM,
STS, EventBridge), with boto3 from the project's Python.

usage:
  aws.py identities ENDPOINT [--enforce] ROLE_ARN...
      Creates an administrator (an IAM user allowed everything, with an access key), assumes
      each role, then with --enforce switches moto's IAM enforcement on
      (POST /moto-api/reset-auth with body 0). Prints
      {"admin": CREDS, "roles": {ROLE_ARN: CREDS}}, CREDS being
      {"access_key_id", "secret_access_key", "session_token"}. Run it before enforcement:
      it signs with moto's default test credentials, which enforcement then rejects.
  aws.py test-event-pattern ENDPOINT ACCESS_KEY SECRET_KEY RULE_NAME < EVENTS.json
      Reads the rule's deployed pattern (DescribeRule) and prints, for each event of the JSON
      list, whether EventBridge's TestEventPattern matches it: [true, false, ...].
"""

import json
import sys
import urllib.request

import boto3

REGION = "us-east-1"


def client(service, endpoint, key="testing", secret="testing", token=None):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


def identities(endpoint, enforce, role_arns):
    iam = client("iam", endpoint)
    iam.create_user(UserName="czero-admin")
    iam.put_user_policy(
        UserName="czero-admin",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="czero-admin")["AccessKey"]
    out = {
        "admin": {
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "session_token": None,
        },
        "roles": {},
    }
    sts = client("sts", endpoint)
    for arn in role_arns:
        c = sts.assume_role(RoleArn=arn, RoleSessionName="czero-test")["Credentials"]
        out["roles"][arn] = {
            "access_key_id": c["AccessKeyId"],
            "secret_access_key": c["SecretAccessKey"],
            "session_token": c["SessionToken"],
        }
    if enforce:
        # Plain text: moto reads the raw body, which a form content type would consume.
        req = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req) as resp:
            resp.read()
    print(json.dumps(out))


def test_event_pattern(endpoint, key, secret, rule):
    events = client("events", endpoint, key, secret)
    pattern = events.describe_rule(Name=rule)["EventPattern"]
    results = [
        events.test_event_pattern(EventPattern=pattern, Event=json.dumps(e))["Result"]
        for e in json.load(sys.stdin)
    ]
    print(json.dumps(results))


def main():
    cmd, endpoint, *rest = sys.argv[1:]
    if cmd == "identities":
        enforce = "--enforce" in rest
        identities(endpoint, enforce, [a for a in rest if a != "--enforce"])
    elif cmd == "test-event-pattern":
        test_event_pattern(endpoint, *rest)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
