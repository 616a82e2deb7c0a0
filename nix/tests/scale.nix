# The design document's scenarios 1-3, end to end, inside a NixOS VM: moto stands in for AWS,
# OpenTofu applies terraform/examples/local to it, `czero local` plays Application Auto
# Scaling and the ECS scheduler (running workers as processes), and `czero invoke --event`
# plays EventBridge calling the invoker. The control plane runs time 10x faster.
# Assertions go through the AWS CLI, as an operator would check a real account:
# `aws ecs describe-services` must show the service go 0 -> N -> 0, and every bucket named
# in an event must end with its public access blocked by the policy.
{
  pkgs,
  rust,
  tools,
}:
let
  port = 5000;
  endpoint = "http://127.0.0.1:${toString port}";
  awsEnv = {
    AWS_ENDPOINT_URL = endpoint;
    AWS_REGION = "us-east-1";
    AWS_DEFAULT_REGION = "us-east-1";
    AWS_ACCESS_KEY_ID = "testing";
    AWS_SECRET_ACCESS_KEY = "testing";
  };
  # The policy the invoker falls back to (default_policy_key of the Terraform module).
  policy = pkgs.writeText "s3-createbucket.yml" ''
    policies:
      - name: s3-block-public-access
        resource: aws.s3
        mode:
          type: cloudtrail
          events:
            - source: s3.amazonaws.com
              event: CreateBucket
              ids: requestParameters.bucketName
        actions:
          - type: set-public-block
            BlockPublicAcls: true
            BlockPublicPolicy: true
            IgnorePublicAcls: true
            RestrictPublicBuckets: true
  '';
in
pkgs.testers.runNixOSTest {
  name = "custodian-zero-scale";

  nodes.machine =
    { ... }:
    {
      virtualisation.memorySize = 3072;
      virtualisation.cores = 2;
      virtualisation.diskSize = 4096;
      environment.systemPackages = [
        tools.tofu
        tools.awscli2
        tools.jq
        rust.czero
        rust.worker
        rust.invoker
      ];
      environment.variables = awsEnv;

      systemd.services.moto = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${tools.python}/bin/python3 ${../../integration/moto/server.py} --host 127.0.0.1 --port ${toString port}";
      };
    };

  testScript = ''
    import json, time

    def aws(cmd):
        return json.loads(machine.succeed(f"aws --output json {cmd}"))

    def desired_count():
        svc = aws(f"ecs describe-services --cluster {out['cluster_name']} --services {out['service_name']}")
        return svc["services"][0]["desiredCount"]

    def event(bucket):
        # The EventBridge envelope of a CloudTrail CreateBucket, as the invoker receives it.
        return json.dumps({
            "version": "0", "id": f"ev-{bucket}", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.s3", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {
                "eventSource": "s3.amazonaws.com", "eventName": "CreateBucket",
                "awsRegion": "us-east-1", "requestParameters": {"bucketName": bucket},
                "userIdentity": {"type": "IAMUser", "accountId": "123456789012"},
            },
        })

    def send(buckets):
        for b in buckets:
            machine.succeed(f"aws s3api create-bucket --bucket {b}")
            machine.succeed(f"cat > /tmp/{b}.json <<'EOF'\n{event(b)}\nEOF")
            machine.succeed(f"env $(cat /root/invoker.env) czero invoke --event /tmp/{b}.json")

    def watch(until, timeout):
        """Desired counts seen until `until(count)` holds; fails after `timeout` seconds."""
        seen, deadline = [], time.time() + timeout
        while time.time() < deadline:
            n = desired_count()
            if not seen or seen[-1] != n:
                seen.append(n)
                print(f"desiredCount -> {n}")
            if until(n, seen):
                return seen
            time.sleep(2)
        raise Exception(f"timed out; desiredCount went {seen}")

    def blocked(bucket):
        cfg = aws(f"s3api get-public-access-block --bucket {bucket}")["PublicAccessBlockConfiguration"]
        return all(cfg.values())

    machine.wait_for_unit("moto.service")
    machine.wait_for_open_port(${toString port})

    machine.succeed(
        "cp -r ${../../terraform} /root/terraform && chmod -R u+w /root/terraform",
        "tofu -chdir=/root/terraform/examples/local init -input=false",
        "tofu -chdir=/root/terraform/examples/local apply -auto-approve -input=false",
    )
    out = {k: v["value"] for k, v in json.loads(
        machine.succeed("tofu -chdir=/root/terraform/examples/local output -json")).items()}
    for name, key in [("invoker", "invoker_environment"), ("worker", "worker_environment")]:
        env = " ".join(f"{k}={v}" for k, v in out[key].items())
        machine.succeed(f"echo '{env}' > /root/{name}.env")
    machine.succeed(f"aws s3 cp ${policy} s3://{out['policy_bucket']}/policies/s3-createbucket.yml")

    # Time runs 10x faster in the control plane: the 300 s scale-in cooldown lasts 30 s.
    machine.succeed(
        "systemd-run --unit czero-local --setenv=AWS_ENDPOINT_URL=${endpoint}"
        " --setenv=AWS_REGION=us-east-1 --setenv=AWS_ACCESS_KEY_ID=testing"
        " --setenv=AWS_SECRET_ACCESS_KEY=testing --setenv=PATH=/run/current-system/sw/bin"
        " sh -c 'exec env $(cat /root/worker.env) czero local --no-table --time-scale 10"
        f" --cluster {out['cluster_name']} --service {out['service_name']}"
        f" --queue-url {out['queue_url']} --worker-bin ${rust.worker}/bin/custodian-worker'"
    )
    machine.wait_for_unit("czero-local.service")

    with subtest("scenario 1: no events, the service stays at 0"):
        for _ in range(15):
            assert desired_count() == 0, "scaled out with an empty queue"
            time.sleep(2)

    with subtest("scenario 2: one event, 0 -> 1 -> 0, bucket remediated"):
        send(["czero-scenario2-0"])
        seen = watch(lambda n, seen: n == 0 and max(seen) >= 1, timeout=300)
        assert max(seen) == 1, f"one job needs one task, saw {seen}"
        assert blocked("czero-scenario2-0")

    with subtest("scenario 3: 25 events, 0 -> N -> 0, every bucket remediated"):
        buckets = [f"czero-scenario3-{i}" for i in range(25)]
        send(buckets)
        seen = watch(lambda n, seen: n == 0 and max(seen) >= 2, timeout=600)
        assert max(seen) <= 10, f"above max_capacity: {seen}"
        print(f"scenario 3 desiredCount went {seen}")
        for b in buckets:
            assert blocked(b), f"{b} not remediated"
        queue = aws(f"sqs get-queue-attributes --queue-url {out['queue_url']} --attribute-names All")
        assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0"
  '';
}
