"""Unit of work: one database transaction per command, rolled back unless committed.

Write units on SQLite open with ``BEGIN IMMEDIATE`` (one writer at a time, so no check-then-act
race between reading a balance and spending it). On PostgreSQL writers lock the member's wallet
row (``LedgerRepository.lock_member``). Repositories never commit; the service does, once."""

from __future__ import annotations

import threading
import weakref
from types import TracebackType

from sqlalchemy import Connection, Engine

# One writer lock per SQLite engine. SQLite admits one writer at a time anyway; without this,
# the threads of one process wait for each other inside SQLite's busy handler, which sleeps and
# polls (up to 100 ms a turn, no queue), so under load some requests starve for seconds. A
# Python lock queues them instead. Other processes on the same file still meet the busy
# handler, which is why SQLite is served with one worker (docs/deployment.md).
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()
# How many writer locks this thread holds (a write unit of work open, or a group-commit batch):
# such a thread must not wait for the group-commit writer, which needs the same lock.
_HELD = threading.local()


def writer_lock(engine: Engine) -> threading.RLock | None:
    """The engine's writer lock (SQLite only; None on PostgreSQL). Also taken by the
    group-commit writer (``gateway.db.batch``) for each batch."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITERS_GUARD:
        lock = _WRITERS.get(engine)
        if lock is None:
            lock = _WRITERS[engine] = threading.RLock()
        return lock


def acquire_writer(lock: threading.RLock) -> None:
    lock.acquire()
    _HELD.count = getattr(_HELD, "count", 0) + 1


def release_writer(lock: threading.RLock) -> None:
    _HELD.count -= 1
    lock.release()


def holds_a_writer_lock() -> bool:
    """Whether this thread is inside a write unit of work or a batch (of any engine)."""
    return bool(getattr(_HELD, "count", 0))


class UnitOfWork:
    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self._engine = engine
        self._write = write
        self._conn: Connection | None = None
        self._committed = False
        self._lock = writer_lock(engine) if write else None


    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def __enter__(self) -> UnitOfWork:
        mode = "IMMEDIATE" if self._write else "DEFERRED"
        if self._lock is not None:
            acquire_writer(self._lock)
        try:
            self._conn = self._engine.connect().execution_options(sqlite_begin=mode)
            self._conn.begin()
        except BaseException:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock is not None:
                release_writer(self._lock)
            raise
        return self

    def commit(self) -> None:
        self.conn.commit()
        self._committed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self.conn
        try:
            if not self._committed:
                conn.rollback()
        finally:
            conn.close()
            self._conn = None
            if self._lock is not None:
                release_writer(self._lock)
