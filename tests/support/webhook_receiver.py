"""A real HTTP receiver for webhook tests: a threaded ``http.server`` on a free local port that
records every request and verifies its Standard Webhooks signature with its own implementation
(written from the specification, sharing no code with ``gateway.webhooks``).

The test sets ``mode``: "ok" (200), "fail" (500), "slow" (sleep ``slow_s``, then 200: a client
timeout), "hold" (keep the request open until ``release()``, then 200), "gone" (410), "busy"
(429, with ``Retry-After: retry_after`` when that is set)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify(secret: str, webhook_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether any ``v1,`` signature in ``header`` is HMAC-SHA256 of ``id.timestamp.body``
    under the base64 key after ``whsec_``."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(
        key, webhook_id.encode() + b"." + timestamp.encode() + b"." + body,
        hashlib.sha256).digest()).decode()
    for part in header.split(" "):
        version, _, signature = part.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


@dataclass
class Received:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    answered: int | None  # the status sent back (None: held or too slow to matter)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.mode = "ok"
        self.slow_s = 1.0
        self.retry_after: str | None = None  # "busy": the Retry-After header sent, if any
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()  # set by each request
        self._released = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def release(self) -> None:
        self._released.set()

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.requests]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                mode = receiver.mode
                status = {"ok": 200, "fail": 500, "slow": 200, "hold": 200, "gone": 410,
                          "busy": 429}[mode]
                record = Received(self.headers.get("webhook-id", ""),
                                  self.headers.get("webhook-timestamp", ""),
                                  self.headers.get("webhook-signature", ""), body, status)
                with receiver.lock:
                    receiver.requests.append(record)
                receiver.arrived.set()
                if mode == "slow":
                    receiver._released.wait(receiver.slow_s)
                elif mode == "hold":
                    receiver._released.wait(120)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    if mode == "busy" and receiver.retry_after is not None:
                        self.send_header("retry-after", receiver.retry_after)
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (or was killed)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    server.daemon_threads = True
    receiver.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
