"""One Redis client per gateway process, and the circuit breaker every Redis backend shares.

When Redis dies, each request should pay for at most one fast failure, not a connect timeout:
the client has short socket timeouts and no retries of its own, and after a failure the breaker
sends every caller straight to its fallback (fail open/closed, the SQL revocation list, no lock)
for ``retry_after_s``. Then one caller probes Redis again; success closes the breaker. The
down and up transitions are logged once each (warning), never once per request.

Errors a backend must survive are ``REDIS_ERRORS``: redis-py's own, plus ``OSError`` for a
socket that dies in a way redis-py does not wrap."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("gateway.redis")

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

CONNECT_TIMEOUT_S = 0.2
READ_TIMEOUT_S = 0.5


def connect(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
            read_timeout_s: float = READ_TIMEOUT_S) -> redis.Redis:
    """A client with a thread-safe connection pool, small timeouts and no hidden retries (the
    breaker decides when to try again; a retry loop inside redis-py would multiply timeouts)."""
    client: redis.Redis = redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=read_timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
    )
    return client


class Breaker:
    """Closed (use Redis) until a failure; then open for ``retry_after_s``; then half open: the
    first caller probes, the others keep using the fallback until the probe has answered."""

    def __init__(self, name: str = "redis", *, retry_after_s: float = 1.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._retry_after_s = retry_after_s
        self._now = now
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0
        self.failures = 0  # total failures seen (for tests and metrics)

    @property
    def down(self) -> bool:
        return self._down

    def allow(self) -> bool:
        """May the caller try Redis now?"""
        with self._lock:
            if not self._down:
                return True
            now = self._now()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_after_s  # this caller probes; others wait
            return True

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self._retry_at = self._now() + self._retry_after_s
            if self._down:
                return
            self._down = True
        log.warning("%s unreachable, using fallbacks for %.1f s before retrying: %s",
                    self._name, self._retry_after_s, error)

    def succeeded(self) -> None:
        if not self._down:  # the common path: no lock
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
        log.warning("%s reachable again", self._name)
