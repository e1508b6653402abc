"""Audit for auth events: the ``audit_log`` writer (:func:`gateway.db.audit.record`, re-exported
here; who, when, what; never a secret) and the refusal log.

Admin actions on clients and keys are recorded in the same transaction as the change they
describe. Refused client authentications change nothing and can come in floods (598 rows in one
short probe once), so :class:`RefusalLog` counts them in memory and writes one row per endpoint,
client id, source address, reason and minute, with the count (``audit_log`` is append-only:
a row is written once its window has ended, by the next refusal or the periodic flush, or
when the process flushes on shutdown).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Table, text

from gateway.core.clock import Clock
from gateway.db.audit import JsonScalar as JsonScalar
from gateway.db.audit import record as record


@contextmanager
def write_transaction(engine: Engine, *, exclusive: Table | None = None) -> Iterator[Connection]:
    """A committed-on-success write transaction (``BEGIN IMMEDIATE`` on SQLite, see db.engine).

    ``exclusive``: on PostgreSQL, first lock this table against other such writers (SHARE ROW
    EXCLUSIVE conflicts with itself and with writes, not with plain reads), for a check-then-
    insert no constraint covers, e.g. "create a signing key unless one is active". SQLite's
    ``BEGIN IMMEDIATE`` already serialises every writer."""
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        if exclusive is not None and conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {exclusive.name} IN SHARE ROW EXCLUSIVE MODE"))
        yield conn


@dataclass(frozen=True, slots=True)
class Refusal:
    endpoint: str  # token, introspection, revocation
    client_id: str | None
    address: str | None
    reason: str  # unknown_client, client_disabled, bad_secret, no_secret, rate_limited, ...
    method: str  # client_secret_basic, client_secret_post, none


class RefusalLog:
    """Refusals counted per window (aligned to the epoch) and written one row per key and window.

    Counts live in this process until written: each worker writes its own rows, and a crash
    loses at most one window of counts (never a ledger fact). ``max_pending`` keys at most are
    held; past that everything pending is written at once."""

    def __init__(self, engine: Engine, clock: Clock, *, window_s: int = 60,
                 max_pending: int = 1000) -> None:
        self._engine = engine
        self._clock = clock
        self._window_s = window_s
        self._max_pending = max_pending
        self._pending: dict[tuple[Refusal, datetime], int] = {}
        self._lock = threading.Lock()

    def refused(self, refusal: Refusal, *, write: bool = True) -> None:
        """Count one refusal. ``write``: also write ended windows now (a database write: pass
        False on the event loop and leave it to the periodic flush). Past ``max_pending`` keys,
        a new client id is counted as ``*`` (a spray of made-up ids cannot grow memory)."""
        start = self._window_start(self._clock.now())
        with self._lock:
            key = (refusal, start)
            if key not in self._pending and len(self._pending) >= self._max_pending:
                key = (Refusal(refusal.endpoint, "*", refusal.address, refusal.reason,
                               refusal.method), start)
            self._pending[key] = self._pending.get(key, 0) + 1
        if write:
            self.flush(everything=False)

    def flush(self, *, everything: bool = True) -> int:
        """Write the counts of ended windows (all counts when ``everything``); rows written."""
        current = self._window_start(self._clock.now())
        with self._lock:
            due = {key: count for key, count in self._pending.items()
                   if everything or key[1] < current}
            for key in due:
                del self._pending[key]
        if not due:
            return 0
        with write_transaction(self._engine) as conn:
            for (refusal, start), count in sorted(due.items(), key=lambda item: item[0][1]):
                client_id = refusal.client_id[:200] if refusal.client_id else None
                detail: dict[str, JsonScalar] = {
                    "reason": refusal.reason, "method": refusal.method, "count": count,
                    "address": refusal.address,
                    "window_start": start.isoformat(),
                    "window_end": (start + timedelta(seconds=self._window_s)).isoformat(),
                }
                record(conn, at=self._clock.now(),
                       actor=f"client:{client_id}"[:200] if client_id else "anonymous",
                       action=f"{refusal.endpoint}.client_refused", subject=client_id,
                       detail=detail)
        return len(due)

    def _window_start(self, at: datetime) -> datetime:
        seconds = int(at.timestamp()) // self._window_s * self._window_s
        return datetime.fromtimestamp(seconds, UTC)
