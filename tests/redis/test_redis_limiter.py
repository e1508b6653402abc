"""The Redis GCRA limiter on a real Redis: the same decisions as the in-process one, one budget
for every client object (as for every worker and host), keys that expire, and a script that
survives Redis forgetting it."""

from __future__ import annotations

import uuid

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.limits import Decision, InProcessRateLimiter
from gateway.redis.health import connect
from gateway.redis.limiter import RedisRateLimiter
from tests.support import servers

ALLOW = Decision(True, 0)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


steps = st.lists(
    st.tuples(st.integers(0, 90_000), st.integers(1, 30)),  # (ms since the last hit, cost)
    min_size=1, max_size=40,
)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(per_minute=st.integers(1, 6000), burst=st.one_of(st.none(), st.integers(1, 25)),
       steps=steps)
def test_same_decisions_as_the_in_process_limiter(
    client: redis.Redis, per_minute: int, burst: int | None, steps: list[tuple[int, int]]
) -> None:
    time = FakeTime()
    prefix = f"t-{uuid.uuid4().hex}:"  # a fresh key space per example
    local = InProcessRateLimiter(per_minute, burst=burst, now=time)
    shared = RedisRateLimiter(client, per_minute, burst=burst, prefix=prefix, now=time)
    expected, got = [], []
    for delay_ms, cost in steps:
        time.now += delay_ms / 1000
        expected.append(local.hit("k", cost))
        got.append(shared.hit("k", cost))
    assert got == expected
    assert all(d.retry_after_s >= 1 for d in got if not d.allowed)  # never 0 when denied
    client.delete(f"{prefix}rl:k")


def test_burst_then_retry_after_on_the_redis_clock(client: redis.Redis, prefix: str) -> None:
    """No explicit now: Redis TIME. One a minute, three at once: the fourth waits a minute
    (rounded up), whatever the gateway host's clock says."""
    limiter = RedisRateLimiter(client, 1, burst=3, prefix=prefix)
    decisions = [limiter.hit("k") for _ in range(4)]
    assert decisions[:3] == [ALLOW] * 3
    assert decisions[3] == Decision(False, 60)
    assert limiter.hit("other") == ALLOW  # keys are independent


def test_cost_is_weighted_and_capped_at_the_burst(client: redis.Redis, prefix: str) -> None:
    time = FakeTime()
    limiter = RedisRateLimiter(client, 60, burst=5, prefix=prefix, now=time)
    assert limiter.hit("k", cost=9) == ALLOW  # capped at 5: admitted on a full burst
    assert limiter.hit("k", cost=1) == Decision(False, 1)
    time.now += 3
    assert limiter.hit("k", cost=4) == Decision(False, 1)  # needs 4 s of credit, has 3
    assert limiter.hit("k", cost=3) == ALLOW


def test_two_clients_share_one_budget(shared_redis: servers.RedisServer, client: redis.Redis,
                                      prefix: str) -> None:
    """Two connection pools stand for two workers (or hosts): one budget between them."""
    other = connect(shared_redis.url)
    try:
        one = RedisRateLimiter(client, 1, burst=2, prefix=prefix)
        two = RedisRateLimiter(other, 1, burst=2, prefix=prefix)
        assert [one.hit("client:a"), two.hit("client:a")] == [ALLOW, ALLOW]
        assert one.hit("client:a").allowed is False
        assert two.hit("client:a").allowed is False
        assert two.hit("client:b") == ALLOW
    finally:
        other.close()


def test_keys_expire_when_their_state_stops_mattering(client: redis.Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(client, 60, burst=10, prefix=prefix)  # one a second
    limiter.hit("k", cost=2)  # two seconds of credit in use
    ttl_ms = client.pttl(f"{prefix}rl:k")
    assert 0 < ttl_ms <= 2_000 + 1_000
    # A denial writes nothing, so it cannot extend the key's life.
    limiter.hit("k", cost=10)
    assert client.pttl(f"{prefix}rl:k") <= ttl_ms


def test_survives_redis_forgetting_the_script(client: redis.Redis, prefix: str) -> None:
    """A restarted Redis has no script cache: EVALSHA answers NOSCRIPT and the script is
    loaded again, within the same hit."""
    limiter = RedisRateLimiter(client, 1, burst=1, prefix=prefix)
    assert limiter.hit("k") == ALLOW
    client.script_flush()
    assert limiter.hit("k") == Decision(False, 60)
