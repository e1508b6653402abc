"""Per-client rate limiting: GCRA (generic cell rate algorithm), cost-weighted.

GCRA keeps one timestamp per key (the "theoretical arrival time"), so it is exact, O(1) and
needs no background refill. This is the in-process limiter of the embedded default; the Redis
one (production, ``gateway.redis.limiter``) runs the same arithmetic in one Lua call behind the
same interface. Both count in integer microseconds: Lua numbers are doubles, exact below 2**53,
and a Unix time in microseconds (about 1.8e15) stays well below that, nanoseconds would not.
Keeping the unit identical is what lets a test hold the two to the same decision sequence."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

US = 10**6  # microseconds per second


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: int  # whole seconds to wait, rounded up; 0 when allowed
    # The limiter could not decide (its Redis is unreachable and limits fail closed): the
    # transport answers 503 rather than 429, since the client did nothing wrong.
    unavailable: bool = False


def interval_us(per_minute: int) -> int:
    """Microseconds of credit one unit of cost uses up."""
    if per_minute <= 0:
        raise ValueError("per_minute must be positive")
    return 60 * US // per_minute


def default_burst(per_minute: int) -> int:
    """A tenth of a minute's allowance (60 at the default 600 a minute), as documented in
    ``gateway.settings.Limits`` and docs/deployment.md (it was a sixth, 100)."""
    return max(1, per_minute // 10)


def retry_after_s(wait_us: int) -> int:
    """Whole seconds, rounded up, never 0: ``Retry-After`` is a promise the client can keep."""
    return max(1, -(-wait_us // US))


class RateLimiter(Protocol):
    def hit(self, key: str, cost: int = 1) -> Decision: ...


class InProcessRateLimiter:
    """Time is kept in integer microseconds so a burst of 100 is exactly 100 (float steps of
    0.1 s drift). A request costing more than the burst is admitted when the whole burst is
    free (its cost is capped at the burst), so ``Retry-After`` is always an honest promise."""

    def __init__(
        self, per_minute: int, *, burst: int | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval_us = interval_us(per_minute)
        self._burst = burst if burst is not None else default_burst(per_minute)
        self._now = now
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: int = 1) -> Decision:
        cost = min(max(cost, 1), self._burst)
        with self._lock:
            now = round(self._now() * US)
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + cost * self._interval_us
            allow_at = new_tat - self._burst * self._interval_us
            if allow_at > now:
                return Decision(False, retry_after_s(allow_at - now))
            self._tat[key] = new_tat
            return Decision(True, 0)
