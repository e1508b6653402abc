"""The shared-state backends a gateway process uses besides its database: the rate limiter,
the revoked-token list and the in-flight idempotency locks, plus readiness checks.

Without ``REDIS_URL`` they run in process (the embedded default); with it they live in Redis,
so every worker and host sees the same limits, revocations and locks. ``build_backends`` is
called once by the composition root (``gateway.app.build``).

With Redis, the three share one client (small timeouts, no hidden retries) and one circuit
breaker, and every key starts with ``Settings.redis_prefix``. None of them is needed for a
point to be right: the database decides idempotency and balances, and keeps the durable list
of revocations; docs/decisions/004-redis-backends.md says what happens when Redis is down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway.auth.revocation import RevocationStore, SqlRevocationStore
from gateway.core.clock import Clock
from gateway.core.locks import InProcessKeyLocks, KeyLocks
from gateway.db.batch import database_serialises_keys
from gateway.limits import InProcessRateLimiter, RateLimiter
from gateway.members.guesses import CodeGuesses
from gateway.redis.health import Breaker, connect
from gateway.redis.limiter import FailSafeLimiter, RedisRateLimiter
from gateway.redis.locks import RedisKeyLocks
from gateway.redis.revocations import RedisRevocationStore
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
    # Budgets for link codes and typed store codes (gateway.members.guesses).
    guesses: CodeGuesses = field(default_factory=CodeGuesses.build)
    # More limiters on the same backend, each with its own rate and key space:
    # make_limiter(name, per_minute, burst) (the member sign-in limits use it).
    make_limiter: Callable[[str, int, int], RateLimiter] = (
        lambda name, per_minute, burst: InProcessRateLimiter(per_minute, burst=burst))


def build_backends(settings: Settings, engine: Engine, clock: Clock) -> Backends:
    limits = settings.limits
    if settings.redis_url is None:
        return Backends(
            limiter=InProcessRateLimiter(limits.rate_limit_per_minute,
                                         burst=limits.rate_limit_burst),
            locks=InProcessKeyLocks(),
        )
    client = connect(settings.redis_url)
    breaker = Breaker()
    prefix = settings.redis_prefix
    limiter = RedisRateLimiter(client, limits.rate_limit_per_minute,
                               burst=limits.rate_limit_burst, prefix=prefix)

    def make_limiter(name: str, per_minute: int, burst: int) -> RateLimiter:
        inner = RedisRateLimiter(client, per_minute, burst=burst, prefix=f"{prefix}{name}:")
        return FailSafeLimiter(inner, breaker, mode=settings.redis_failure_mode)

    def ping() -> None:
        client.ping()

    def close() -> None:
        client.close()
        client.connection_pool.disconnect()

    def guess_limiter(per_minute: int, burst: int) -> RateLimiter:
        return FailSafeLimiter(RedisRateLimiter(client, per_minute, burst=burst, prefix=prefix),
                               breaker, mode=settings.redis_failure_mode)

    return Backends(
        limiter=FailSafeLimiter(limiter, breaker, mode=settings.redis_failure_mode),
        guesses=CodeGuesses.build(guess_limiter),
        locks=(InProcessKeyLocks() if database_serialises_keys(engine)
               else RedisKeyLocks(client, breaker, prefix=prefix)),
        revocations=RedisRevocationStore(client, breaker, SqlRevocationStore(engine, clock),
                                         clock, prefix=prefix),
        checks={"redis": ping},
        close=close,
        make_limiter=make_limiter,
    )
