"""entropy_exfiltration_redacted: a POST carrying a large base64 blob to the usual destination raises
an `entropy` alert tagged exfiltration, and the alert never carries the payload: the evidence shows
its length, entropy, SHA-256 and 16 leading characters only.

Five `support-bot` instances make LLM calls and POST short JSON tickets (plain text, 100-300 bytes)
to tickets.internal.example:443 for two hours; then support-bot-4 POSTs 6,000 bytes of base64
(random bytes) to the same destination, twice.
"""

import base64
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, rng, write  # noqa: E402

r = rng(4)
WORDS = ("customer reports the invoice total is wrong after the upgrade please check billing history "
         "and refund the duplicate charge escalate to tier two if the account is enterprise").split()
events = []
agents = [f"support-bot-{n}" for n in range(5)]
t = T0
while t < T0 + 2 * 3600_000:
    a = r.choice(agents)
    if r.random() < 0.5:
        events.append(event(t, a, "llm_call", agent="support-bot", model="m-large",
                            tokens={"input": 1500 + r.randrange(300), "output": 200 + r.randrange(50)}))
    else:
        body = '{"ticket":"T-%d","note":"%s"}' % (r.randrange(100000), " ".join(r.choice(WORDS) for _ in range(r.randrange(15, 45))))
        events.append(event(t, a, "net", agent="support-bot", dest="tickets.internal.example:443", method="POST",
                            bytes_out=len(body), payload=body))
    t += 3_000 + r.randrange(4_000)
for k in range(2):
    blob = base64.b64encode(bytes(r.getrandbits(8) for _ in range(4500))).decode()
    events.append(event(t, "support-bot-4", "net", agent="support-bot", dest="tickets.internal.example:443",
                        method="POST", bytes_out=len(blob), payload=blob))
    t += 5_000
write(here(__file__), events)
