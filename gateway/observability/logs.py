"""Structured logs: one JSON object per line on stderr, each stamped with the current request id.

A ``ContextVar`` carries the request id from the middleware to every log line written while the
request runs, in the same task or in a worker thread (``anyio.to_thread`` copies the context),
so a line logged deep inside (Strawberry's masked-exception log, a retry warning) can be joined
to the access line of its request. ``Settings.log_json`` false gives plain text for development.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)

# What a client may send as X-Request-ID; anything else (too long, spaces, quotes, newlines that
# could forge log lines) is replaced by a generated id.
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

# The attributes every LogRecord has; anything else was passed in ``extra`` and is emitted.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "color_message", "taskName"}


def request_id_from(header: bytes | None) -> str:
    """The client's id when it is well formed, else a fresh one: 128 random bits as 32 hex
    digits (a uuid4's entropy without building a ``UUID``, a quarter of the cost)."""
    if header:
        candidate = header.decode("latin-1")
        if _VALID_ID.fullmatch(candidate):
            return candidate
    return os.urandom(16).hex()


class JsonFormatter(logging.Formatter):
    """``{ts, level, logger, msg, request_id, ...extra}``; an exception goes in ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        fields = vars(record)
        for key in fields.keys() - _STANDARD:  # what ``extra`` added, usually a handful
            entry.setdefault(key, fields[key])
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Development: ``time level logger [request id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        return f"{line} [{request_id}]" if request_id else line


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included) to one stderr handler; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_gateway", False):
            root.removeHandler(old)
    handler._gateway = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Every request writes an access line, so the record's cost is on the hot path. Neither
    # formatter prints the caller's file and line, the thread or the process, and finding the
    # caller walks the stack for every record: the logging HOWTO's "Optimization" switches.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The middleware writes the access line (with the request id and route); uvicorn's own
    # would be a second, poorer line per request.
    logging.getLogger("uvicorn.access").disabled = True
