"""Retry a whole transaction when PostgreSQL aborted it to keep two writers apart.

PostgreSQL may cancel one of two concurrent transactions with a serialisation failure (SQLSTATE
40001, under REPEATABLE READ or SERIALIZABLE) or a deadlock (40P01, two transactions waiting on
each other's row locks). Neither means the request was wrong: the transaction was rolled back
whole, and running it again from the start is correct. So every write unit of work runs inside
``retrying``: a bounded number of attempts, with a growing, jittered pause so two victims do not
collide again in step. Anything else (and the last failure) propagates unchanged. SQLite never
raises these (its writers queue on ``BEGIN IMMEDIATE``), so there this is one plain call.
See docs/decisions/005-postgresql-write-paths.md."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

R = TypeVar("R")

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
MAX_ATTEMPTS = 5
BASE_DELAY_S = 0.005
MAX_DELAY_S = 0.2


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (psycopg's ``sqlstate``), if it carries one."""
    if not isinstance(exc, DBAPIError):
        return None
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def is_retryable(exc: BaseException) -> bool:
    return sqlstate(exc) in RETRYABLE_SQLSTATES


def retrying(
    unit: Callable[[], R],
    *,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> R:
    """Run ``unit`` (one whole transaction, opened and closed inside it) until it does not
    fail with a serialisation failure or deadlock, at most ``attempts`` times."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return unit()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
            ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt)
            sleep(random.uniform(0, ceiling))  # full jitter
    raise AssertionError("unreachable")
