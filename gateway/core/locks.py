"""In-flight idempotency locks: one request per (partner, idempotency key) runs at a time.

The database is what guarantees exactly-once (a UNIQUE key on operations; a duplicate that
loses the race is answered as a replay). The lock only stops duplicates from doing the work
twice and then colliding: the second request waits for the first and replays its answer. So a
lock that cannot be had (timed out, or Redis down) is not an error: the command runs anyway
and the database decides. ``hold`` yields whether the lock was obtained, for metrics and tests.

On PostgreSQL the command's own transaction already takes ``pg_advisory_xact_lock`` on the same
(partner, key) before it looks the key up (docs/decisions/005-postgresql-write-paths.md), which
queues a duplicate on every worker and host exactly as a Redis lock would. A Redis lock there
cost two more round trips per command (``SET NX``, then the release script) and bought nothing,
so with PostgreSQL the locks stay in process (duplicates within one worker wait without holding
a database connection) and the advisory lock does the rest (issue 11: Redis commands per earn
from 3 to 1, the rate limit's script).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class KeyLocks(Protocol):
    def hold(self, key: str, *, wait_s: float = 10.0) -> AbstractContextManager[bool]: ...


class InProcessKeyLocks:
    """A lock per key held by this process's threads; entries are freed when unused."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str, *, wait_s: float = 10.0) -> Iterator[bool]:
        with self._guard:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        acquired = lock.acquire(timeout=wait_s)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
            with self._guard:
                _, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

