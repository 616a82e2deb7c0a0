"""Plays a worker that gets SIGKILLed: starts the c7n driver from CZERO_DRIVER_SOURCE the way
the czero-driver crate does (`python -B -c SOURCE`, stdin/stdout pipes), sends it the run
request given as argv[1], waits until the job runs, prints {"driver": pid, "job": pid} and
sleeps until it is killed.
"""

import json
import os
import subprocess
import sys
import time


def main():
    request = sys.argv[1]
    env = dict(os.environ, CZERO_DRIVER_PARENT_PID=str(os.getpid()))
    driver = subprocess.Popen(
        [sys.executable, "-B", "-c", os.environ["CZERO_DRIVER_SOURCE"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    ready = json.loads(driver.stdout.readline())
    assert ready["type"] == "ready", ready
    driver.stdin.write(request.encode() + b"\n")
    driver.stdin.flush()
    for n in range(400):
        driver.stdin.write(json.dumps({"id": 1000 + n, "op": "probe"}).encode() + b"\n")
        driver.stdin.flush()
        while True:
            line = json.loads(driver.stdout.readline())
            if line.get("type") == "response" and line["id"] == 1000 + n:
                break
        jobs = line["result"]["jobs"]
        if jobs:
            print(json.dumps({"driver": driver.pid, "job": jobs[0]["pid"]}), flush=True)
            break
        time.sleep(0.025)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
