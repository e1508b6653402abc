"""Revoked tokens in Redis: the fast set every worker asks, in front of the durable SQL record.

``revoke`` writes ``revoked_tokens`` first (the record that survives anything), then
``SET revoked:<jti> EX <until the token expires, plus slack>``. ``is_revoked`` is one Redis
round trip instead of one database query per request.

A revoked token must never be accepted because Redis lost data, so Redis is trusted only while
its marker key ``revoked:loaded`` exists. The marker is written after a full reload of the live
revocations from SQL, and has no TTL: a restarted (or flushed) Redis has no marker, and the
first worker to notice reloads before answering. While Redis is unreachable (or the breaker is
open) every check goes to SQL, and a revocation that could not reach Redis is kept in
``_pending`` and written there as soon as this worker reaches Redis again.

Redis must not evict these keys under memory pressure (``maxmemory-policy noeviction`` or a
``volatile-*`` policy with room to spare): an evicted key with the marker still present would
be a revoked token accepted. docs/decisions/004-redis-backends.md says so for operators.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime

import redis

from gateway.auth.revocation import SqlRevocationStore
from gateway.core.clock import Clock
from gateway.redis.health import REDIS_ERRORS, Breaker

SLACK_S = 60  # kept past expiry, for verifiers whose clocks run a little behind


class RedisRevocationStore:
    def __init__(self, client: redis.Redis, breaker: Breaker, sql: SqlRevocationStore,
                 clock: Clock, *, prefix: str = "gw:", cache_size: int = 10_000) -> None:
        self._client = client
        self._breaker = breaker
        self._sql = sql
        self._clock = clock
        self._key = f"{prefix}revoked:"
        self._marker = f"{prefix}revoked:loaded"
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._known: set[str] = set()  # revocation is permanent: a hit can be cached forever
        self._pending: dict[str, datetime] = {}
        self.reloads = 0  # full reloads from SQL done by this store (for tests and metrics)

    def revoke(self, jti: str, expires_at: datetime) -> None:
        self._sql.revoke(jti, expires_at)
        self._remember(jti)
        with self._lock:
            self._pending[jti] = expires_at
        if self._breaker.allow():
            try:
                self._flush_pending()
            except REDIS_ERRORS as error:
                self._breaker.failed(error)
                return
            self._breaker.succeeded()

    def is_revoked(self, jti: str) -> bool:
        with self._lock:
            if jti in self._known:
                return True
        if not self._breaker.allow():
            return self._sql.is_revoked(jti)
        try:
            revoked = self._ask_redis(jti)
        except REDIS_ERRORS as error:
            self._breaker.failed(error)
            return self._sql.is_revoked(jti)
        self._breaker.succeeded()
        if revoked:
            self._remember(jti)
        return revoked

    def purge_expired(self) -> int:
        """Redis expires its keys itself; the SQL record is purged as before."""
        return self._sql.purge_expired()

    def _ask_redis(self, jti: str) -> bool:
        self._flush_pending()
        pipe = self._client.pipeline(transaction=False)
        pipe.exists(self._marker)
        pipe.exists(self._key + jti)
        loaded, found = pipe.execute()
        if loaded:
            return bool(found)
        return jti in self._reload()

    def _reload(self) -> set[str]:
        """Copy every live revocation from SQL, then set the marker (order matters: a marker
        without the keys would be trusted). Idempotent, so workers racing to reload is fine."""
        live = self._sql.live()
        pipe = self._client.pipeline(transaction=True)  # MULTI: never a marker without keys
        for jti, expires_at in live:
            pipe.set(self._key + jti, 1, ex=self._ttl_s(expires_at))
        pipe.set(self._marker, 1)
        pipe.execute()
        self.reloads += 1
        return {jti for jti, _ in live}

    def _flush_pending(self) -> None:
        with self._lock:
            pending = list(self._pending.items())
        if not pending:
            return
        pipe = self._client.pipeline(transaction=False)
        for jti, expires_at in pending:
            pipe.set(self._key + jti, 1, ex=self._ttl_s(expires_at))
        pipe.execute()
        with self._lock:
            for jti, _ in pending:
                self._pending.pop(jti, None)

    def _ttl_s(self, expires_at: datetime) -> int:
        remaining = (expires_at - self._clock.now()).total_seconds()
        return max(1, math.ceil(remaining)) + SLACK_S

    def _remember(self, jti: str) -> None:
        with self._lock:
            if len(self._known) >= self._cache_size:
                self._known.clear()
            self._known.add(jti)
