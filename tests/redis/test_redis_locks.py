"""In-flight idempotency locks in Redis: one holder across clients (workers, hosts), a TTL that
frees a crashed holder's lock, and a release that only ever frees the releaser's own lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from sqlalchemy import create_engine

from gateway.backends import build_backends
from gateway.core.clock import SystemClock
from gateway.core.locks import InProcessKeyLocks
from gateway.redis.health import Breaker, connect
from gateway.redis.locks import RedisKeyLocks
from gateway.settings import Settings
from tests.support import servers


def test_one_holder_across_two_clients(shared_redis: servers.RedisServer, client: redis.Redis,
                                       prefix: str) -> None:
    other = connect(shared_redis.url)
    try:
        one = RedisKeyLocks(client, Breaker(), prefix=prefix)
        two = RedisKeyLocks(other, Breaker(), prefix=prefix)
        with one.hold("idem:grocery:k1") as first:
            assert first is True
            with two.hold("idem:grocery:k1", wait_s=0.05) as second:
                assert second is False  # held elsewhere: the caller runs and the DB decides
            with two.hold("idem:grocery:k2", wait_s=0.05) as unrelated:
                assert unrelated is True
        with two.hold("idem:grocery:k1", wait_s=0.05) as after:
            assert after is True
        assert client.exists(f"{prefix}lock:idem:grocery:k1") == 0  # released, not left to TTL
    finally:
        other.close()


def test_mutual_exclusion_under_contention(shared_redis: servers.RedisServer,
                                           client: redis.Redis, prefix: str) -> None:
    """24 threads on two clients: never two inside at once, and every one gets its turn."""
    other = connect(shared_redis.url)
    locks = [RedisKeyLocks(client, Breaker(), prefix=prefix),
             RedisKeyLocks(other, Breaker(), prefix=prefix)]
    inside = 0
    most_inside = 0
    guard = threading.Lock()
    barrier = threading.Barrier(24)

    def work(i: int) -> bool:
        nonlocal inside, most_inside
        barrier.wait(timeout=30)
        with locks[i % 2].hold("idem:grocery:same", wait_s=30) as acquired:
            with guard:
                inside += 1
                most_inside = max(most_inside, inside)
            threading.Event().wait(0.002)  # hold it a moment, so overlaps would show
            with guard:
                inside -= 1
            return acquired

    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            acquired = list(pool.map(work, range(24)))
    finally:
        other.close()
    assert acquired == [True] * 24
    assert most_inside == 1


def test_a_crashed_holders_lock_expires(client: redis.Redis, prefix: str) -> None:
    crashed = RedisKeyLocks(client, Breaker(), prefix=prefix, ttl_s=0.2)
    held = crashed.hold("idem:grocery:k")
    assert held.__enter__() is True  # entered and never left: the process died holding it
    assert 0 < client.pttl(f"{prefix}lock:idem:grocery:k") <= 200
    waiter = RedisKeyLocks(client, Breaker(), prefix=prefix)
    with waiter.hold("idem:grocery:k", wait_s=10) as acquired:
        assert acquired is True


def test_only_the_owner_releases(client: redis.Redis, prefix: str) -> None:
    """A holder whose lock expired, finishing late, must not free the next holder's lock."""
    slow = RedisKeyLocks(client, Breaker(), prefix=prefix, ttl_s=0.1)
    late = slow.hold("idem:grocery:k")
    assert late.__enter__() is True
    nxt = RedisKeyLocks(client, Breaker(), prefix=prefix, ttl_s=30)
    with nxt.hold("idem:grocery:k", wait_s=10) as acquired:  # after the 0.1 s TTL
        assert acquired is True
        late.__exit__(None, None, None)  # the slow one finishes now and releases "its" lock
        assert client.exists(f"{prefix}lock:idem:grocery:k") == 1
        third = RedisKeyLocks(client, Breaker(), prefix=prefix)
        with third.hold("idem:grocery:k", wait_s=0.05) as intruder:
            assert intruder is False


def test_with_postgresql_the_advisory_lock_replaces_the_redis_lock(
        shared_redis: servers.RedisServer, tmp_path: Path) -> None:
    """On PostgreSQL the command's transaction queues duplicates with pg_advisory_xact_lock
    (decision 005): the in-flight lock stays in process, no Redis round trips per command.
    On SQLite the Redis lock is still the shared one."""
    settings = Settings(redis_url=shared_redis.url)
    postgres = create_engine("postgresql+psycopg://gw@127.0.0.1:1/none")  # never connected
    sqlite = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    for engine, expected in ((postgres, InProcessKeyLocks), (sqlite, RedisKeyLocks)):
        backends = build_backends(settings, engine, SystemClock())
        try:
            assert type(backends.locks) is expected
        finally:
            backends.close()
            engine.dispose()
