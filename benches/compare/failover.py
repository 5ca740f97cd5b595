#!/usr/bin/env python3
"""Kills a leader and measures the time to the first write a survivor accepts.

usage: failover.py sekisho|etcd PID HOST:PORT[,HOST:PORT...]

Sends SIGKILL to PID, then writes one key through each survivor in turn (a new connection per
attempt, 500 ms timeout, no pause between attempts) until one is acknowledged: a `true` answer
from Sekisho's PUT /v1/kv, a 200 with a header from etcd's /v3/kv/put. Prints the milliseconds
from the kill to that acknowledgement, or "timeout" after 30 s (exit 1).
"""
import http.client
import os
import signal
import sys
import time

kind, pid, survivors = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")


def write(addr):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=0.5)
    try:
        if kind == "sekisho":
            conn.request("PUT", "/v1/kv/compare/failover", body=b"x")
            r = conn.getresponse()
            return r.status == 200 and r.read().strip() == b"true"
        conn.request("POST", "/v3/kv/put", body=b'{"key":"ZmFpbG92ZXI=","value":"eA=="}')
        r = conn.getresponse()
        return r.status == 200 and b"header" in r.read()
    except OSError:
        return False
    finally:
        conn.close()


os.kill(pid, signal.SIGKILL)
start = time.monotonic()
n = 0
while time.monotonic() - start < 30:
    if write(survivors[n % len(survivors)]):
        print(f"{(time.monotonic() - start) * 1000:.0f}")
        sys.exit(0)
    n += 1
print("timeout")
sys.exit(1)
