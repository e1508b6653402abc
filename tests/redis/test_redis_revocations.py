"""Revoked tokens in Redis in front of the SQL record: every worker sees a revocation at once,
and no revoked token is ever accepted because Redis restarted, was flushed, or was unreachable
when the revocation was made."""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy import Engine

from gateway.auth.revocation import SqlRevocationStore
from gateway.core.clock import FixedClock
from gateway.redis.health import Breaker, connect
from gateway.redis.revocations import SLACK_S, RedisRevocationStore
from tests.support import servers

EXPIRES_IN = timedelta(minutes=10)


def store(client: redis.Redis, engine: Engine, clock: FixedClock, prefix: str,
          breaker: Breaker | None = None) -> RedisRevocationStore:
    """A store as one worker process has it (its own local cache, its own breaker)."""
    return RedisRevocationStore(client, breaker or Breaker(), SqlRevocationStore(engine, clock),
                                clock, prefix=prefix)


def test_a_revocation_is_seen_by_another_worker(
    client: redis.Redis, engine: Engine, clock: FixedClock, prefix: str
) -> None:
    one, two = store(client, engine, clock, prefix), store(client, engine, clock, prefix)
    assert two.is_revoked("jti-1") is False
    one.revoke("jti-1", clock.now() + EXPIRES_IN)
    assert two.is_revoked("jti-1") is True
    assert two.is_revoked("jti-2") is False
    one.revoke("jti-1", clock.now() + EXPIRES_IN)  # idempotent
    assert SqlRevocationStore(engine, clock).is_revoked("jti-1") is True  # the durable record
    ttl = client.ttl(f"{prefix}revoked:jti-1")
    assert EXPIRES_IN.total_seconds() < ttl <= EXPIRES_IN.total_seconds() + SLACK_S


def test_a_revocation_survives_a_redis_restart(
    own_redis: servers.RedisServer, engine: Engine, clock: FixedClock, prefix: str
) -> None:
    client = connect(own_redis.url)
    try:
        before = store(client, engine, clock, prefix)
        before.revoke("jti-1", clock.now() + EXPIRES_IN)
        before.revoke("expired", clock.now() - timedelta(seconds=1))  # SQL only matters now
        own_redis.restart()  # SIGKILL and start: no persistence, every key is gone
        assert client.exists(f"{prefix}revoked:jti-1") == 0

        after = store(client, engine, clock, prefix)  # a worker with an empty local cache
        assert after.is_revoked("jti-1") is True  # no marker: reloaded from SQL first
        assert after.reloads == 1
        assert client.exists(f"{prefix}revoked:loaded") == 1
        assert client.exists(f"{prefix}revoked:jti-1") == 1
        assert client.exists(f"{prefix}revoked:expired") == 0  # not live: not copied
        assert after.is_revoked("jti-2") is False
        assert after.reloads == 1  # the marker is there now: one reload, not one per check
    finally:
        client.close()


def test_a_flush_is_noticed_too(
    client: redis.Redis, engine: Engine, clock: FixedClock, prefix: str
) -> None:
    one = store(client, engine, clock, prefix)
    one.revoke("jti-1", clock.now() + EXPIRES_IN)
    assert one.is_revoked("other") is False  # loads the marker
    client.delete(*client.keys(f"{prefix}*"))  # as FLUSHDB would, for this prefix only
    two = store(client, engine, clock, prefix)
    assert two.is_revoked("jti-1") is True
    assert two.reloads == 1


def test_redis_unreachable_falls_back_to_sql(
    own_redis: servers.RedisServer, engine: Engine, clock: FixedClock, prefix: str
) -> None:
    client = connect(own_redis.url)
    breaker = Breaker()
    try:
        worker = store(client, engine, clock, prefix, breaker)
        assert worker.is_revoked("jti-0") is False
        own_redis.kill()
        worker.revoke("jti-1", clock.now() + EXPIRES_IN)  # no exception: SQL has it
        assert breaker.down
        assert store(client, engine, clock, prefix, breaker).is_revoked("jti-1") is True
        assert worker.is_revoked("jti-2") is False  # answered by SQL, without an exception
    finally:
        own_redis.start()
        client.close()


def test_a_revocation_made_while_redis_was_unreachable_reaches_it_later(
    client: redis.Redis, engine: Engine, clock: FixedClock, prefix: str
) -> None:
    """Redis kept its data but this worker could not write to it (a network blip): the
    revocation waits in the worker and is written when the worker next reaches Redis."""
    now = [0.0]
    breaker = Breaker(now=lambda: now[0])
    worker = store(client, engine, clock, prefix, breaker)
    other = store(client, engine, clock, prefix)
    assert other.is_revoked("jti-0") is False  # the marker is set: Redis is trusted
    breaker.failed(ConnectionError("blip"))  # the worker's breaker opens
    worker.revoke("jti-1", clock.now() + EXPIRES_IN)
    assert client.exists(f"{prefix}revoked:jti-1") == 0  # not written to Redis yet
    now[0] += 1.0  # the breaker lets the worker try again
    assert worker.is_revoked("jti-9") is False
    assert client.exists(f"{prefix}revoked:jti-1") == 1
    assert other.is_revoked("jti-1") is True
    assert not breaker.down
