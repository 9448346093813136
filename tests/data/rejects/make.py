"""rejects (an error golden): malformed lines are rejected one by one into the dead letters, with
the reason, a detail naming the field, the source and line number, and the raw line (`raw_b64` only
for invalid UTF-8); the valid lines around them (one with a CRLF ending) are scored; no alerts.

config.toml lowers `max_event_bytes` to 256 so the too_large line stays small in the repository.
Expected: expected_rejects.jsonl (one record per malformed line, in input order),
expected_report.json (events 3, invalid_events 14), no alerts.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import here  # noqa: E402

lines = [
    b'{"ts":"2026-01-01T00:00:00.000Z","agent_id":"ok-1","kind":"llm_call","model":"m"}',
    b'this is not JSON',
    b'{"ts":"2026-01-01T00:00:01.000Z","agent_id":"ok-1","kind":"llm_ca',
    b'',
    b'{"ts":"2026-01-01T00:00:02.000Z","agent_id":"caf\xe9\xff","kind":"llm_call"}',
    b'{"agent_id":"bad","kind":"llm_call"}',
    b'{"ts":1.5,"agent_id":"bad","kind":"llm_call"}',
    b'{"ts":"2026-01-01T00:00:03.000Z","agent_id":"bad","kind":"llm_call","tokens":{"input":-1}}',
    b'{"ts":"2026-01-01T00:00:04.000Z","agent_id":"bad","kind":"auth","op":"sudo","outcome":"maybe"}',
    b'{"ts":"not a time","agent_id":"bad","kind":"llm_call"}',
    b'{"ts":"2026-01-01T00:00:05.000Z","agent_id":"bad","kind":"llm_call","kind":"net"}',
    b'{"ts":"2026-01-01T00:00:06.000Z","agent_id":"bad","kind":"x","extra":' + b"[" * 80 + b"1" + b"]" * 80 + b"}",
    b'{"ts":"2026-01-01T00:00:07.000Z","agent_id":"bad","kind":"net","payload":"' + b"A" * 300 + b'"}',
    b'{"ts":"2026-01-01T00:00:08.000Z","agent_id":"ok-2","kind":"tool_call","tool":"search"}\r',
    b'{"ts":"2026-01-01T00:00:09.000Z","agent_id":"bad","kind":"metric","metric":{"name":"cost_usd"}}',
    b'{"ts":"2026-01-01T00:00:10.000Z","agent_id":"bad","kind":"tool_call"}',
    b'{"ts":"2026-01-01T00:00:11.000Z","agent_id":"ok-1","kind":"llm_call","model":"m"}',
]
with open(os.path.join(here(__file__), "events.jsonl"), "wb") as f:
    for line in lines:
        f.write(line + b"\n")
