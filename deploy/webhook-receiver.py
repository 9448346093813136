#!/usr/bin/env python3
"""An example receiver of vigil's containment webhooks (Python standard library only).

It checks the Standard Webhooks signature exactly as vigil's own verifier does (`vigil webhook
verify`), refuses stale timestamps, de-duplicates on `webhook-id` (vigil delivers at least once:
after a crash the same alert may arrive again, always with the same id), and only then acts.

    VIGIL_WEBHOOK_SECRET=whsec_... python3 deploy/webhook-receiver.py 127.0.0.1 9000

Answer 2xx only once the action is durably taken or queued; vigil retries connect errors,
timeouts, 408, 429 and 5xx, and dead-letters any other 4xx without retrying.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECS = 300
SECRETS = [s for s in os.environ.get("VIGIL_WEBHOOK_SECRET", "").split(",") if s]
SEEN = set()  # use a durable store with expiry in production


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def valid(msg_id: str, timestamp: str, signature_header: str, body: bytes) -> bool:
    if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > TOLERANCE_SECS:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for secret in SECRETS:
        expected = base64.b64encode(hmac.new(key_of(secret), signed, hashlib.sha256).digest()).decode()
        for entry in signature_header.split():
            version, _, sig = entry.partition(",")
            if version == "v1" and sig and hmac.compare_digest(sig, expected):
                return True
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        if not valid(msg_id, self.headers.get("webhook-timestamp", ""), self.headers.get("webhook-signature", ""), body):
            self.send_response(401)  # not retried by vigil: a forgery or a misconfigured secret
            self.end_headers()
            return
        if msg_id not in SEEN:
            event = json.loads(body)
            # Act here: stop the agent for "kill", isolate it for "contain", page someone for "notify".
            print(f"{event['action']:>8} {event['agent_id']}: {event['alert']['title']} ({msg_id})", flush=True)
            SEEN.add(msg_id)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if not SECRETS:
        sys.exit("set VIGIL_WEBHOOK_SECRET (comma-separated during a key rotation)")
    host, port = (sys.argv[1], int(sys.argv[2])) if len(sys.argv) == 3 else ("127.0.0.1", 9000)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
