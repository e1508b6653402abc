"""In-flight idempotency locks in Redis, so duplicates on different workers and hosts wait too.

``SET key token NX PX ttl`` takes the lock; a waiter polls with short sleeps until ``wait_s``;
release deletes the key only if it still holds our random token (a compare-and-delete script),
so a holder whose lock expired never frees someone else's. The TTL frees the lock of a holder
that crashed. As in ``gateway.core.locks``, the lock is an optimisation, not the guarantee: on
any Redis error (or while the breaker is open) ``hold`` yields False at once and the command
runs; the database's UNIQUE (partner, idempotency key) decides, so no point is lost or doubled.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from gateway.redis.health import REDIS_ERRORS, Breaker

log = logging.getLogger("gateway.redis")

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

POLL_FIRST_S = 0.002
POLL_MAX_S = 0.025


class RedisKeyLocks:
    def __init__(self, client: redis.Redis, breaker: Breaker, *, prefix: str = "gw:",
                 ttl_s: float = 30.0) -> None:
        self._client = client
        self._breaker = breaker
        self._prefix = f"{prefix}lock:"
        self._ttl_ms = int(ttl_s * 1000)
        self._release = client.register_script(RELEASE_LUA)

    @contextmanager
    def hold(self, key: str, *, wait_s: float = 10.0) -> Iterator[bool]:
        name = self._prefix + key
        token = secrets.token_hex(16)
        acquired = self._acquire(name, token, wait_s)
        try:
            yield acquired
        finally:
            if acquired:
                self._free(name, token)

    def _acquire(self, name: str, token: str, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        pause = POLL_FIRST_S
        while self._breaker.allow():
            try:
                taken = self._client.set(name, token, nx=True, px=self._ttl_ms)
            except REDIS_ERRORS as error:
                self._breaker.failed(error)
                return False
            self._breaker.succeeded()
            if taken:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, POLL_MAX_S)
        return False

    def _free(self, name: str, token: str) -> None:
        try:
            self._release(keys=[name], args=[token])
        except REDIS_ERRORS as error:  # the TTL frees it; the command has already committed
            self._breaker.failed(error)
            log.debug("could not release %s: %s", name, error)
