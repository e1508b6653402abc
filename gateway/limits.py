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
    def __init__(
        self, per_minute: int, *, burst: int | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._interval = 60.0 / per_minute  # seconds per unit of cost
        self._burst = burst if burst is not None else max(1, per_minute // 6)
        self._now = now
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: int = 1) -> Decision:
        with self._lock:
            now = self._now()
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + cost * self._interval
            allow_at = new_tat - self._burst * self._interval
            if allow_at > now:
                return Decision(False, max(1, math.ceil(allow_at - now)))
            self._tat[key] = new_tat
            return Decision(True, 0)
