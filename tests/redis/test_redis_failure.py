"""What the Redis backends do while Redis is down: limits fail open or closed as configured,
locks are not taken (the database decides), no exception escapes, and the breaker turns a dead
Redis into one failure, not one per request. Each test kills a Redis of its own."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.limits import Decision
from gateway.redis.health import Breaker, connect
from gateway.redis.limiter import FailSafeLimiter, RedisRateLimiter
from gateway.redis.locks import RedisKeyLocks
from tests.support import harness, servers

ALLOW = Decision(True, 0)
UNAVAILABLE = Decision(False, 1, unavailable=True)


class Ticks:
    """The breaker's clock, moved by hand: no test here waits for real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("mode", "while_down"), [("open", ALLOW), ("closed", UNAVAILABLE)])
def test_limits_fail_as_configured_and_recover(
    own_redis: servers.RedisServer, prefix: str, mode: str, while_down: Decision,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = connect(own_redis.url)
    ticks = Ticks()
    breaker = Breaker(now=ticks)
    limiter = FailSafeLimiter(RedisRateLimiter(client, 1, burst=2, prefix=prefix), breaker,
                              mode=mode)
    try:
        assert [limiter.hit("k"), limiter.hit("k")] == [ALLOW, ALLOW]
        assert limiter.hit("k") == Decision(False, 60)  # a real limit while Redis is up
        with caplog.at_level(logging.WARNING, logger="gateway.redis"):
            own_redis.kill()
            assert [limiter.hit("k") for _ in range(200)] == [while_down] * 200
            assert breaker.failures == 1  # one failed call; the other 199 never tried Redis
            ticks.now += 1.0  # the retry interval passes: one probe, which fails again
            assert [limiter.hit("k") for _ in range(50)] == [while_down] * 50
            assert breaker.failures == 2

            own_redis.start()  # empty: the client's budget starts afresh
            assert limiter.hit("k") == while_down  # breaker still open: no probe yet
            ticks.now += 1.0
            assert [limiter.hit("k"), limiter.hit("k")] == [ALLOW, ALLOW]
            assert limiter.hit("k") == Decision(False, 60)
        messages = [r.getMessage() for r in caplog.records if r.name == "gateway.redis"]
        assert len(messages) == 2, messages  # down once, up once: not once per request
        assert "unreachable" in messages[0]
        assert messages[1] == "redis reachable again"
    finally:
        client.close()


def test_locks_are_not_waited_for_while_redis_is_down(
    own_redis: servers.RedisServer, prefix: str
) -> None:
    client = connect(own_redis.url)
    breaker = Breaker(now=Ticks())
    locks = RedisKeyLocks(client, breaker, prefix=prefix)
    try:
        own_redis.kill()
        with locks.hold("idem:grocery:k", wait_s=60) as first:
            assert first is False  # not an error: the command runs and the database decides
        with locks.hold("idem:grocery:k", wait_s=60) as second:
            assert second is False
        assert breaker.failures == 1  # the second did not even try
    finally:
        client.close()


def test_an_unreachable_address_fails_like_a_dead_server(prefix: str) -> None:
    """Nothing ever listened there: the same fallbacks, no exception."""
    client = connect(f"redis://127.0.0.1:{servers.free_port()}/0")
    breaker = Breaker()
    limiter = FailSafeLimiter(RedisRateLimiter(client, 60, prefix=prefix), breaker,
                              mode="closed")
    assert limiter.hit("k") == UNAVAILABLE
    with RedisKeyLocks(client, breaker, prefix=prefix).hold("k") as acquired:
        assert acquired is False
    client.close()


def test_an_unknown_failure_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="'open' or 'closed'"):
        FailSafeLimiter(RedisRateLimiter(connect("redis://127.0.0.1:1/0"), 60), Breaker(),
                        mode="sometimes")


async def test_readiness_reports_redis(tmp_path: Path, own_redis: servers.RedisServer,
                                       prefix: str) -> None:
    """/readyz pings Redis; the gateway keeps serving /healthz with Redis down."""
    settings = harness.test_settings(tmp_path, redis_url=own_redis.url, redis_prefix=prefix)
    gw = build(settings, clock=FixedClock(harness.NOW))
    harness.track(gw.services.engine)
    transport = httpx.ASGITransport(app=gw.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as http:
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()["checks"]["redis"]) == (200, "ok")
            own_redis.kill()
            down = await http.get("/readyz")
            assert down.status_code == 503
            assert down.json()["down"] == ["redis"]
            assert (await http.get("/healthz")).status_code == 200
    finally:
        gw.backends.close()
