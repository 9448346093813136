"""class_change: an agent whose `agent` class changes raises exactly one `class_change` alert.

Three `support-bot` instances work ordinarily for 20 minutes; then support-bot-2 reports the class
`admin-bot` for six events and flips back to `support-bot` within the cooldown. Expected: one alert,
detector `class_change`, for support-bot-2, class admin-bot, titled "from support-bot to admin-bot",
at the first event with the new class, and nothing else: the flip back joins the open alert group.

`config.toml` makes class barriers frequent so the class table knows `support-bot` by name when the
change happens; `class_change_before_first_barrier` is the same input without it.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, rng, write  # noqa: E402


def make(case_dir):
    write(case_dir, events())


def events():
    r = rng(1)
    events = []
    t = T0
    for step in range(120):
        for n in range(3):
            a = f"support-bot-{n}"
            if step % 2 == 0:
                events.append(event(t, a, "llm_call", agent="support-bot", session_id=f"s-{n}",
                                    model="m-large", tokens={"input": 1500 + r.randrange(200), "output": 200}))
            else:
                events.append(event(t, a, "tool_call", agent="support-bot", session_id=f"s-{n}",
                                    tool="crm.lookup", args={"customer": f"C-{r.randrange(1000)}"}))
            t += 3_000 + r.randrange(500)
    # The switch, then more events under the new class.
    for step in range(6):
        events.append(event(t, "support-bot-2", "llm_call", agent="admin-bot", session_id="s-2",
                            model="m-large", tokens={"input": 1500 + r.randrange(200), "output": 200}))
        t += 4_000
    # ... and back within the cooldown.
    for step in range(5):
        events.append(event(t, "support-bot-2", "llm_call", agent="support-bot", session_id="s-2",
                            model="m-large", tokens={"input": 1500 + r.randrange(200), "output": 200}))
        t += 4_000
    return events


if __name__ == "__main__":
    make(here(__file__))
