# The design document's scenarios 1-3, end to end, inside a NixOS VM, as the integration
# harness plays them on the cargo path (integration/src/stack.rs, scenario.rs, tests/e2e.rs):
# moto stands in for AWS, OpenTofu applies terraform/examples/local to it, the policies and
# the mapping are uploaded as czero_testkit::upload_project_policies uploads them, `czero
# local` plays Application Auto Scaling and the ECS scheduler (running workers as
# processes), and `czero invoke --event` plays EventBridge calling the invoker. The control
# plane runs time 30x faster, with the workers' timeouts scaled as the harness scales them.
#
#   1. no events: the service stays at 0;
#   2. one CreateBucket: desired 0 -> 1 -> 0, the bucket remediated;
#   3. 25 CreateBuckets at once: desired 0 -> peak 5 (ceil(25 / 5)) -> 0, every bucket
#      remediated, queue and DLQ empty.
#
# Desired counts come from the control plane's timeline (one JSON line per change it made)
# and are checked against `aws ecs describe-services`, as an operator would check an account.
{
  pkgs,
  rust,
  tools,
}:
let
  port = 5000;
  endpoint = "http://127.0.0.1:${toString port}";
  timeScale = 30;
  # The files the tests upload to the policy bucket.
  policies = ../../policies;
  mapping = ../../config/policy-mappings.json;
in
pkgs.testers.runNixOSTest {
  name = "custodian-zero-scale";

  nodes.machine =
    { ... }:
    {
      virtualisation.memorySize = 4096;
      virtualisation.cores = 2;
      virtualisation.diskSize = 4096;
      environment.systemPackages = [
        tools.tofu
        tools.awscli2
        tools.jq
        rust.czero
        rust.worker
      ];

      systemd.services.moto = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${tools.python}/bin/python ${../../integration/moto/server.py} --host 127.0.0.1 --port ${toString port}";
      };
    };

  testScript = ''
    import json, math, shlex, uuid

    ENDPOINT = "${endpoint}"
    SCALE = ${toString timeScale}
    AWS_ENV = {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def env(extra=None):
        pairs = dict(AWS_ENV, **(extra or {}))
        return "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in pairs.items())

    def aws(cmd):
        return json.loads(machine.succeed(f"{env()} aws --output json {cmd}") or "null")

    def tofu(args):
        return machine.succeed(f"{env()} tofu -chdir=/root/terraform/examples/local {args}")

    def service():
        svc = aws(f"ecs describe-services --cluster {out['cluster_name']} --services {out['service_name']}")
        return svc["services"][0]["desiredCount"], svc["services"][0]["runningCount"]

    def depth(url):
        a = aws(f"sqs get-queue-attributes --queue-url {url} --attribute-names All")["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def event(bucket):
        # The EventBridge envelope of a CloudTrail CreateBucket (integration/src/events.rs).
        eid = str(uuid.uuid4())
        role = "arn:aws:iam::123456789012:role/Developer"
        return {
            "version": "0", "id": eid, "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.s3", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {
                "eventVersion": "1.09",
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "AROAEXAMPLEID:dev-session",
                    "arn": "arn:aws:sts::123456789012:assumed-role/Developer/dev-session",
                    "accountId": "123456789012",
                    "sessionContext": {"sessionIssuer": {
                        "type": "Role", "principalId": "AROAEXAMPLEID", "arn": role,
                        "accountId": "123456789012", "userName": "Developer"}},
                },
                "eventTime": "2026-01-01T00:00:00Z", "eventSource": "s3.amazonaws.com",
                "eventName": "CreateBucket", "awsRegion": "us-east-1",
                "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"},
                "responseElements": None, "eventID": eid, "readOnly": False,
                "eventType": "AwsApiCall", "managementEvent": True,
                "recipientAccountId": "123456789012", "eventCategory": "Management",
            },
        }

    def control_plane(name, args):
        """Starts `czero local` as a unit that stays loaded after it exits."""
        task_env = dict(out["worker_environment"])
        task_env["WAIT_TIME_SECONDS"] = "1"
        for key, default, floor in [("JOB_TIMEOUT_SECONDS", 300, 2), ("VISIBILITY_TIMEOUT_SECONDS", 360, 4)]:
            task_env[key] = str(max(math.ceil(float(task_env.get(key, default)) / SCALE), floor))
        task_env["LOG_FORMAT"] = "json"
        cmd = [
            "${rust.czero}/bin/czero", "local", "--endpoint", ENDPOINT,
            "--cluster", out["cluster_name"], "--service", out["service_name"],
            "--queue-url", out["queue_url"], "--time-scale", str(SCALE),
            "--timeline", f"/tmp/{name}.jsonl", "--no-table",
            "--worker-bin", "${rust.worker}/bin/custodian-worker",
        ] + args
        for k, v in task_env.items():
            cmd += ["--task-env", f"{k}={v}"]
        props = " ".join(f"--setenv={k}={shlex.quote(v)}" for k, v in AWS_ENV.items())
        machine.succeed(
            f"systemd-run --unit {name} --property RemainAfterExit=yes {props} "
            + " ".join(shlex.quote(c) for c in cmd)
        )
        # Events go out only once it has recorded the service at rest.
        machine.wait_until_succeeds(f"test -s /tmp/{name}.jsonl", timeout=60)

    def finished(name, timeout):
        machine.wait_until_succeeds(
            f"systemctl show -p SubState --value {name} | grep -qx 'exited\\|failed'", timeout=timeout)
        result = machine.succeed(f"systemctl show -p Result --value {name}").strip()
        if result != "success":
            print(machine.succeed(f"journalctl -u {name} --no-pager | tail -n 100"))
            raise Exception(f"{name}: czero local ended with {result}")
        rows = [json.loads(l) for l in machine.succeed(f"cat /tmp/{name}.jsonl").splitlines() if l.strip()]
        seq = []
        for r in rows:
            if not seq or seq[-1] != r["desired"]:
                seq.append(r["desired"])
        print(f"{name}: desired went {seq}")
        return rows, seq

    def send(buckets, name):
        # Every invocation at once, as EventBridge delivers a burst (Stack::invoke_all).
        machine.succeed(f"mkdir -p /tmp/{name}")
        for b in buckets:
            machine.succeed(f"{env()} aws s3api create-bucket --bucket {b}")
            machine.succeed(f"cat > /tmp/{name}/{b}.json <<'EOF'\n{json.dumps(event(b))}\nEOF")
        invoker = env(out["invoker_environment"])
        machine.succeed(
            f"ls /tmp/{name}/*.json | xargs -P {len(buckets)} -I{{}} {invoker} czero invoke --event {{}}")

    def remediated(bucket):
        """What the default policy does to a new bucket (scenario::is_remediated): encryption,
        every public access block setting, a tag."""
        def get(cmd):
            status, text = machine.execute(f"{env()} aws --output json s3api {cmd} --bucket {bucket}")
            return json.loads(text) if status == 0 else None
        enc = get("get-bucket-encryption")
        block = get("get-public-access-block")
        tags = get("get-bucket-tagging")
        return (
            enc is not None and bool(enc["ServerSideEncryptionConfiguration"]["Rules"])
            and block is not None and all(block["PublicAccessBlockConfiguration"].values())
            and tags is not None and bool(tags["TagSet"])
        )

    def drained():
        assert depth(out["queue_url"]) == (0, 0), f"queue not empty: {depth(out['queue_url'])}"
        assert depth(out["dlq_url"]) == (0, 0), f"DLQ not empty: {depth(out['dlq_url'])}"
        assert service() == (0, 0), f"service did not return to 0: {service()}"

    machine.wait_for_unit("moto.service")
    machine.wait_for_open_port(${toString port})

    machine.succeed("cp -r ${../../terraform} /root/terraform && chmod -R u+w /root/terraform")
    tofu("init -input=false")
    tofu(f"apply -auto-approve -input=false -var endpoint={ENDPOINT}")
    out = {k: v["value"] for k, v in json.loads(tofu("output -json")).items()}

    with subtest("the policies and the mapping are where the invoker reads them"):
        bucket = out["policy_bucket"]
        machine.succeed(f"{env()} aws s3 cp ${mapping} s3://{bucket}/config/policy-mappings.json")
        machine.succeed(
            f"for f in ${policies}/*.yml ${policies}/*.yaml; do [ -e \"$f\" ] || continue; "
            f"{env()} aws s3 cp \"$f\" s3://{bucket}/policies/$(basename \"$f\"); done")
        keys = sorted(o["Key"] for o in aws(f"s3api list-objects-v2 --bucket {bucket}")["Contents"])
        expected = sorted(
            ["config/policy-mappings.json"]
            + [f"policies/{f}" for f in machine.succeed("ls ${policies}").split() if f.endswith((".yml", ".yaml"))])
        assert keys == expected, f"uploaded {keys}, expected {expected}"

    with subtest("scenario 1: no events, the service stays at 0"):
        control_plane("scenario-1", ["--duration", str(10 * SCALE)])
        rows, seq = finished("scenario-1", timeout=120)
        assert rows, "the control plane recorded nothing"
        assert all(r["desired"] == 0 and r["running"] == 0 for r in rows), f"left 0: {seq}"
        assert service() == (0, 0)

    with subtest("scenario 2: one event, 0 -> 1 -> 0, the bucket remediated"):
        control_plane("scenario-2", ["--until-idle", "--duration", str(240 * SCALE)])
        buckets = ["czero-scenario-2-0"]
        send(buckets, "scenario-2")
        rows, seq = finished("scenario-2", timeout=300)
        assert seq == [0, 1, 0], f"desired went {seq}"
        drained()
        assert remediated(buckets[0]), f"{buckets[0]} not remediated"

    with subtest("scenario 3: 25 events at once, 0 -> 5 -> 0, every bucket remediated"):
        control_plane("scenario-3", ["--until-idle", "--duration", str(240 * SCALE)])
        buckets = [f"czero-scenario-3-{i}" for i in range(25)]
        send(buckets, "scenario-3")
        rows, seq = finished("scenario-3", timeout=300)
        assert seq[0] == 0 and seq[-1] == 0, f"desired went {seq}"
        assert max(seq) == 5, f"25 jobs at 5 per task must give 5 tasks; desired went {seq}"
        drained()
        left = [b for b in buckets if not remediated(b)]
        assert not left, f"not remediated: {left}"
  '';
}
