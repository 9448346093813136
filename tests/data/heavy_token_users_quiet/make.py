"""heavy_token_users_quiet: coding agents that are heavy every day raise nothing.

Three `coding-agent` instances work in five sessions over some three hours: each step is an LLM call re-sending a
large context (60k-140k input tokens; 5-10 million tokens per 10 minutes, as coding agents with big
context windows do) followed by a file read or a test run. Their usage is steady, so no call is
unusually large for them or their class. Expected: no alert at all (the `token-burn` rule counts
only calls the token baseline finds unusually large; it once fired on every such agent).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from casegen import T0, event, here, rng, write  # noqa: E402

r = rng(11)
events = []
agents = [f"coder-{n}" for n in range(3)]
files = ["src/main.rs", "src/lib.rs", "src/config.rs", "tests/api.rs", "Cargo.toml", "README.md"]
for n, a in enumerate(agents):
    t = T0 + n * 17_000
    for s in range(5):
        session = f"{a}-s{s}"
        for k in range(120):
            t += 3_000 + r.randrange(5_000)
            events.append(event(t, a, "llm_call", agent="coding-agent", session_id=session, model="m-large",
                                tokens={"input": 60_000 + r.randrange(80_000), "output": 100 + r.randrange(2_000)}))
            t += 500 + r.randrange(1_500)
            if r.randrange(3):
                path = "/home/dev/proj/" + files[r.randrange(len(files))]
                events.append(event(t, a, "tool_call", agent="coding-agent", session_id=session, tool="Read",
                                    args={"file_path": path}))
                events.append(event(t + 5, a, "file", agent="coding-agent", session_id=session, path=path,
                                    op="read", bytes=500 + r.randrange(20_000)))
            else:
                events.append(event(t, a, "tool_call", agent="coding-agent", session_id=session, tool="Bash",
                                    args={"command": "cargo test"}))
        t += 600_000 + r.randrange(600_000)
events.sort(key=lambda e: e["ts"])
write(here(__file__), events)
