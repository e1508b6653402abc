"""Per-client rate limiting: GCRA (generic cell rate algorithm), cost-weighted.

GCRA keeps one timestamp per key (the "theoretical arrival time"), so it is exact, O(1) and
needs no background refill. This is the in-process limiter of the embedded default; the Redis
one (production) runs the same arithmetic in one Lua call behind the same interface."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: int  # whole seconds to wait, rounded up; 0 when allowed


class RateLimiter(Protocol):
    def hit(self, key: str, cost: int = 1) -> Decision: ...


class InProcessRateLimiter:
    """Time is kept in integer nanoseconds so a burst of 100 is exactly 100 (float steps of
    0.1 s drift). A request costing more than the burst is admitted when the whole burst is
    free (its cost is capped at the burst), so ``Retry-After`` is always an honest promise."""

    def __init__(
        self, per_minute: int, *, burst: int | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._interval_ns = 60 * 10**9 // per_minute  # nanoseconds per unit of cost
        self._burst = burst if burst is not None else max(1, per_minute // 6)
        self._now = now
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: int = 1) -> Decision:
        cost = min(max(cost, 1), self._burst)
        with self._lock:
            now = round(self._now() * 10**9)
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + cost * self._interval_ns
            allow_at = new_tat - self._burst * self._interval_ns
            if allow_at > now:
                return Decision(False, max(1, math.ceil((allow_at - now) / 10**9)))
            self._tat[key] = new_tat
            return Decision(True, 0)
