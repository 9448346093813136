"""duplicate_ids: a producer `id` seen twice for the same agent is a duplicate: dropped, counted in
`duplicate_events`, and given no score line. The same `id` from another agent is not a duplicate
(de-duplication is per agent), and events without `id` are never duplicates.

Expected (expected_scores.jsonl, expected_report.json): 12 lines in, 2 duplicates dropped, 10 score
lines; no alerts.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, write  # noqa: E402


def call(i, agent, id_=None, **kw):
    return event(T0 + i * 1_000, agent, "tool_call", agent="dedup-bot", id=id_, tool="search",
                 args={"q": f"query {i}"}, **kw)


events = [
    call(0, "bot-a", "e-1"),
    call(1, "bot-a", "e-2"),
    call(2, "bot-a", "e-2"),             # duplicate of the line above: dropped
    call(3, "bot-b", "e-2"),             # same id, other agent: kept
    call(4, "bot-a", "e-3"),
    call(5, "bot-a", None),              # no id: kept
    call(6, "bot-a", None),              # no id: kept
    call(7, "bot-b", "e-4"),
    call(8, "bot-a", "e-1"),             # duplicate of the first line, 8 s later: dropped
    call(9, "bot-b", "e-5"),
    call(10, "bot-a", "e-6"),
    call(11, "bot-b", "e-1"),            # bot-b's first e-1: kept
]
write(here(__file__), events)
