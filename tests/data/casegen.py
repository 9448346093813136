"""Helpers for the `make.py` scripts that generate golden cases (see README.md).

Deterministic: a case's `make.py` seeds its own `random.Random`, so running it again rewrites the
same `events.jsonl` byte for byte. No dependency on the simulator or on vigil itself.
"""

import json
import os
import random
import sys

# 2026-01-01T00:00:00Z in epoch milliseconds.
T0 = 1_767_225_600_000


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC text with three fraction digits."""
    import datetime

    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def event(ts: int, agent_id: str, kind: str, text_ts: bool = True, **fields) -> dict:
    """One event: `ts` first (RFC 3339 text, or epoch milliseconds when `text_ts` is false)."""
    e = {"ts": rfc3339(ts) if text_ts else ts, "agent_id": agent_id, "kind": kind}
    e.update({k: v for k, v in fields.items() if v is not None})
    return e


def write(case_dir: str, events, name: str = "events.jsonl") -> None:
    """Writes events (dicts, or raw `bytes` lines written as they are) as JSON Lines."""
    events = list(events)
    if len(events) >= 5000:
        sys.exit(f"{case_dir}: {len(events)} lines; golden cases stay under 5,000")
    with open(os.path.join(case_dir, name), "wb") as f:
        for e in events:
            if isinstance(e, bytes):
                f.write(e + b"\n")
            else:
                f.write(json.dumps(e, separators=(",", ":")).encode() + b"\n")


def here(file: str) -> str:
    return os.path.dirname(os.path.abspath(file))


def rng(seed: int) -> random.Random:
    return random.Random(seed)
