"""Template case: copy this directory to tests/data/<what_it_pins>/ and edit.

Writes events.jsonl. Run it with `python3 make.py` from anywhere; then bless the case with
`VIGIL_BLESS=1 cargo test --release -p vigil --test golden` and read expected_alerts.jsonl.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, write  # noqa: E402

events = []
for i in range(10):
    # One agent of class `template-bot`, an ordinary LLM call every 30 s: nothing to alert on.
    events.append(event(T0 + i * 30_000, "template-bot-1", "llm_call", agent="template-bot",
                        model="m-small", tokens={"input": 400, "output": 80}))
write(here(__file__), events)
