"""The shared-state backends a gateway process uses besides its database: the rate limiter,
the revoked-token list and the in-flight idempotency locks, plus readiness checks.

Without ``REDIS_URL`` they run in process (the embedded default); with it they live in Redis,
so every worker and host sees the same limits, revocations and locks. ``build_backends`` is
called once by the composition root (``gateway.app.build``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway.auth.revocation import RevocationStore
from gateway.core.clock import Clock
from gateway.core.locks import InProcessKeyLocks, KeyLocks
from gateway.limits import InProcessRateLimiter, RateLimiter
from gateway.settings import Settings


@dataclass
class Backends:
    limiter: RateLimiter
    locks: KeyLocks
    # None: the auth service keeps revocations in the database (SqlRevocationStore).
    revocations: RevocationStore | None = None
    # Readiness probes for /readyz beyond the database: name -> callable raising when down.
    checks: dict[str, Callable[[], None]] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def build_backends(settings: Settings, engine: Engine, clock: Clock) -> Backends:
    limits = settings.limits
    if settings.redis_url is None:
        return Backends(
            limiter=InProcessRateLimiter(limits.rate_limit_per_minute,
                                         burst=limits.rate_limit_burst),
            locks=InProcessKeyLocks(),
        )
    raise NotImplementedError("Redis backends: issue 5, in progress")
