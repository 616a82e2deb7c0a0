"""Runs Cloud Custodian's event path in-process, as its Lambda handler does.

usage: c7n_push.py POLICY_FILE EVENT_FILE OUTPUT_DIR [REPEAT] [REGION] [PAUSE]

EVENT_FILE holds one event or a JSON list of events. Loads the policy file with c7n's own
loader (schema, variables, validate) and calls `policy.push(event, None)` for each policy and
event, REPEAT times (default 1), PAUSE seconds apart (default 0), writing c7n's output under
OUTPUT_DIR/<policy>/. Prints one
JSON line per push: {"policy", "seconds", "cpu_seconds", "resources"}, the resources as the
ids c7n's resource type names them by (GroupId, InstanceId, UserName, ...); cpu_seconds is
this process's CPU time in the push (the emulator's own work is not in it). `custodian run` cannot do
this: on an event-mode policy it deploys a Lambda.
"""

import json
import sys
import time

from c7n import policy as c7n_policy
from c7n.config import Config
from c7n.resources.aws import AWS


def main():
    policy_file, event_file, output_dir = sys.argv[1:4]
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    region = sys.argv[5] if len(sys.argv) > 5 else "us-east-1"
    pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    with open(event_file) as fh:
        events = json.load(fh)
    if not isinstance(events, list):
        events = [events]
    config = AWS().initialize(Config.empty(
        region=region,
        regions=[region],
        output_dir=output_dir,
        cache_period=0,
        account_id="123456789012",
    ))
    policies = c7n_policy.load(config, policy_file)
    for p in policies:
        p.expand_variables(p.get_variables())
        p.validate()
    for _ in range(repeat):
        for event, p in [(e, p) for e in events for p in policies]:
            time.sleep(pause)
            start = time.perf_counter()
            cpu_start = time.process_time()
            result = p.push(json.loads(json.dumps(event)), None) or []
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            if isinstance(result, dict):
                result = [r for rs in result.values() for r in rs]
            id_field = p.resource_manager.get_model().id
            print(json.dumps({
                "policy": p.name,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "resources": [r[id_field] for r in result],
            }), flush=True)


if __name__ == "__main__":
    main()
