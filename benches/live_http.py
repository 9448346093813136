#!/usr/bin/env python3
"""Event-to-alert latency and throughput of `vigil run` over HTTP ingest.

A 2xx answer means the batch was processed and its alerts written (cli.md), so the request's
round trip is an upper bound of event-to-durable-alert latency for every event in it.

    benches/live_http.py VIGIL_BINARY EVENTS.jsonl [RATE_EVENTS_PER_S] [BATCH]

Starts `vigil run` on a free loopback port (alerts to /dev/null), sends EVENTS at a steady RATE in
batches of BATCH events over one keep-alive connection, and prints one JSON line: achieved rate,
request latency p50/p90/p99/max. RATE 0 sends as fast as the detector answers (its throughput).
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    vigil, events = os.path.abspath(sys.argv[1]), sys.argv[2]
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 20000
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    lines = open(events, "rb").read().splitlines(keepends=True)
    bodies = [b"".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]
    port = free_port()
    work = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [vigil, "--log-level", "warn", "run", "--listen", f"127.0.0.1:{port}"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        lat = []
        start = time.perf_counter()
        sent = 0
        for i, body in enumerate(bodies):
            if rate > 0:
                due = start + sent / rate
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
            t = time.perf_counter()
            conn.request("POST", "/v1/events", body, {"content-type": "application/x-ndjson"})
            r = conn.getresponse()
            r.read()
            lat.append(time.perf_counter() - t)
            if r.status != 200:
                sys.exit(f"request {i}: HTTP {r.status}")
            sent += body.count(b"\n")
        elapsed = time.perf_counter() - start
        lat.sort()
        pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3)
        print(json.dumps({
            "events": sent, "batch": batch, "target_rate": rate, "achieved_rate": round(sent / elapsed),
            "requests": len(lat), "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": round(lat[-1] * 1000, 3)},
        }))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
