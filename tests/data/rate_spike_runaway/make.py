"""rate_spike_runaway: an agent caught in a loop, calling its LLM 60 times in a minute where its
class makes one call a minute, raises a `rate` alert (tagged resource-abuse) — and two alerts in all,
not sixty: the loop's further calls join the open groups within the cooldown.

Four `research-agent` instances make an LLM call then a `web.search` tool call about once a minute
each for two and a half hours; then research-agent-0 makes 60 LLM calls in 60 s. Expected: first a
`sequence` alert (an LLM call right after an LLM call is a step the class never takes), a few calls
in; then a `rate` alert ("Call-rate spike: N llm_call events in 60s (usual 1.0)") once the rate is
the strongest component of a call (while `sequence` is as strong, its open group absorbs the call).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, rng, write  # noqa: E402

r = rng(3)
events = []
agents = [f"research-agent-{n}" for n in range(4)]
minute = 60_000
for m in range(150):
    for n, a in enumerate(agents):
        base = T0 + m * minute + n * 7_000 + r.randrange(5_000)
        events.append(event(base, a, "llm_call", agent="research-agent", session_id=f"{a}-s{m // 30}",
                            model="m-large", tokens={"input": 2000 + r.randrange(400), "output": 300 + r.randrange(100)}))
        events.append(event(base + 20_000 + r.randrange(5_000), a, "tool_call", agent="research-agent",
                            session_id=f"{a}-s{m // 30}", tool="web.search", args={"q": f"topic {r.randrange(50)}"}))
events.sort(key=lambda e: e["ts"])
loop_start = T0 + 150 * minute
for k in range(60):
    events.append(event(loop_start + k * 1_000, "research-agent-0", "llm_call", agent="research-agent",
                        session_id="research-agent-0-s5", model="m-large",
                        tokens={"input": 2000 + r.randrange(400), "output": 300 + r.randrange(100)}))
write(here(__file__), events)
