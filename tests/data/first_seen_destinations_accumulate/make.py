"""first_seen_destinations_accumulate: destinations no agent of the class has contacted, after a long
history in which the class's set of destinations settled, add up: one new host is weak evidence
(its p-value is the class's rate of new destinations, about 1e-3 here), four new hosts within a
minute raise a `first_seen` alert tagged new-egress, naming the host that tipped it.

Five `data-pipeline` instances talk to the same three hosts (warehouse, object store, metrics) for
two hours, with ordinary tool calls in between; then data-pipeline-2 POSTs to four hosts never seen
before, 15 s apart. Expected: one first_seen alert for data-pipeline-2, at the fourth new host
(drop.example.com), and nothing during the ordinary history.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, rng, write  # noqa: E402

r = rng(5)
NEW_HOSTS = ["paste.example.net:443", "transfer.example.org:443", "203.0.113.7:8443", "drop.example.com:443"]
HOSTS = ["warehouse.internal.example:5432", "s3.internal.example:443", "metrics.internal.example:443"]
events = []
agents = [f"data-pipeline-{n}" for n in range(5)]
t = T0
while t < T0 + 2 * 3600_000:
    a = r.choice(agents)
    if r.random() < 0.6:
        events.append(event(t, a, "net", agent="data-pipeline", dest=r.choice(HOSTS), method="POST",
                            bytes_out=2000 + r.randrange(1000), bytes_in=200 + r.randrange(100)))
    else:
        events.append(event(t, a, "tool_call", agent="data-pipeline", tool="schema.check",
                            args={"table": f"t{r.randrange(20)}"}))
    t += 3_000 + r.randrange(4_000)
for k, host in enumerate(NEW_HOSTS):
    events.append(event(t + k * 15_000, "data-pipeline-2", "net", agent="data-pipeline", dest=host, method="POST",
                        bytes_out=2000 + r.randrange(1000), bytes_in=200 + r.randrange(100)))
write(here(__file__), events)
