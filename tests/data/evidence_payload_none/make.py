"""evidence_payload_none: with `[output] evidence_payload = "none"`, payload evidence keeps its
length, entropy and SHA-256 but loses even the 16 leading characters.

Same input as `../entropy_exfiltration_redacted` (copied by this script); expected: the same entropy
alert, whose evidence payload has no `prefix` (and no `text`).
"""

import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
shutil.copyfile(os.path.join(HERE, "..", "entropy_exfiltration_redacted", "events.jsonl"), os.path.join(HERE, "events.jsonl"))
