"""late_events: an event older than its agent's newest `ts` by more than the allowed lateness (5 s)
is still scored (it has a score line) but counted in `late_events`; within the lateness it is not.
Time is per agent: one agent's event far in the future makes that agent's own later events late,
never another agent's.

- bot-a: one event a second for 100 s, then one 50 s old (late) and one 2 s old (not late);
- bot-b: an event in 2030, then ordinary events: all late against bot-b's own clock (3);
- bot-c: ordinary events after bot-b's future one: none late.
Expected (expected_report.json): late_events = 4; every event has a score line; no alerts.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, write  # noqa: E402

FUTURE = 1_893_456_000_000  # 2030-01-01T00:00:00Z


def llm(ts, agent, text_ts=True):
    return event(ts, agent, "llm_call", text_ts=text_ts, agent="clock-bot", model="m",
                 tokens={"input": 500, "output": 50})


events = [llm(T0 + i * 1_000, "bot-a") for i in range(101)]
events.append(llm(T0 + 50_000, "bot-a"))           # 50 s older than bot-a's newest: late
events.append(llm(T0 + 98_000, "bot-a"))           # 2 s older: within the lateness
events.append(llm(FUTURE, "bot-b", text_ts=False))  # far future: moves only bot-b's clock
for i in range(3):
    events.append(llm(T0 + 101_000 + i * 1_000, "bot-b", text_ts=False))  # late for bot-b
for i in range(3):
    events.append(llm(T0 + 104_000 + i * 1_000, "bot-c"))                 # not late
write(here(__file__), events)
