"""Runs Cloud Custodian's event path in-process, as its Lambda handler does.

usage: c7n_push.py POLICY_FILE EVENT_FILE OUTPUT_DIR [REPEAT]

EVENT_FILE holds one event or a JSON list of events. Loads the policy file with c7n's own
loader and calls `policy.push(event, None)` for each policy and event (REPEAT times,
default 1), writing c7n's output under OUTPUT_DIR/<policy>/. Prints
one JSON line per push: {"policy", "seconds", "cpu_seconds", "resources"} (cpu_seconds is
this process's CPU time in the push: the emulator's own work is not in it). `custodian run` cannot do
this: on an event-mode policy it deploys a Lambda.
"""

import json
import sys
import time

from c7n import policy as c7n_policy
from c7n.config import Config
from c7n.resources import load_resources


def main():
    policy_file, event_file, output_dir = sys.argv[1:4]
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    with open(event_file) as fh:
        events = json.load(fh)
    if not isinstance(events, list):
        events = [events]
    load_resources(("aws.s3",))
    config = Config.empty(
        region="us-east-1",
        output_dir=output_dir,
        cache_period=0,
        account_id="123456789012",
    )
    policies = c7n_policy.load(config, policy_file)
    for _ in range(repeat):
        for event, p in [(e, p) for e in events for p in policies]:
            start = time.perf_counter()
            cpu_start = time.process_time()
            resources = p.push(event, None) or []
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            print(json.dumps({
                "policy": p.name,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "resources": [r["Name"] for r in resources],
            }), flush=True)


if __name__ == "__main__":
    main()
