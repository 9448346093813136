"""privilege_escalation_burst: many denied `sudo` attempts by one agent of a class with a long,
ordinary history raise `escalation` alerts, grouped: one per cooldown (300 s), not one per attempt.

Four `ops-bot` instances work for two hours: LLM calls, `kubectl.get` / `logs.read` tool calls and,
now and then, an ordinary `token_request` that succeeds. Then ops-bot-3 tries `sudo` every 20 s for
12 minutes (36 attempts), every one denied. Expected: escalation alerts for ops-bot-3 only, about one
per 300 s of the burst (three), tagged privilege-escalation; nothing during the ordinary history.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, rng, write  # noqa: E402

r = rng(2)
events = []
agents = [f"ops-bot-{n}" for n in range(4)]
t = T0
end = T0 + 2 * 3600_000
while t < end:
    a = r.choice(agents)
    x = r.random()
    if x < 0.4:
        events.append(event(t, a, "llm_call", agent="ops-bot", model="m-medium",
                            tokens={"input": 900 + r.randrange(300), "output": 120 + r.randrange(60)}))
    elif x < 0.7:
        events.append(event(t, a, "tool_call", agent="ops-bot", tool="kubectl.get",
                            args={"resource": r.choice(["pods", "deployments", "services"])}))
    elif x < 0.95:
        events.append(event(t, a, "tool_call", agent="ops-bot", tool="logs.read",
                            args={"service": r.choice(["api", "web", "worker"]), "lines": 200}))
    else:
        events.append(event(t, a, "auth", agent="ops-bot", op="token_request", scope="k8s:read",
                            principal=f"svc-{a}", outcome="ok"))
    t += 4_000 + r.randrange(4_000)
# The burst: 36 denied sudo attempts, one every 20 s, interleaved with the fleet's ordinary work.
burst_start = t
for k in range(36):
    ts = burst_start + k * 20_000
    events.append(event(ts, "ops-bot-3", "auth", agent="ops-bot", op="sudo", privileged=True,
                        principal="svc-ops-bot-3", outcome="denied"))
    for n in range(3):
        events.append(event(ts + 5_000 + n * 4_000, agents[n], "llm_call", agent="ops-bot", model="m-medium",
                            tokens={"input": 900 + r.randrange(300), "output": 120 + r.randrange(60)}))
write(here(__file__), events)
