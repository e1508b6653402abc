"""The token endpoint limits (gateway.auth.throttle) on Redis: the same back-off as in process,
shared by two gateways' limiter objects as by two workers."""

from __future__ import annotations

import redis

from gateway.auth.throttle import EndpointLimits
from gateway.limits import InProcessRateLimiter, RateLimiter
from gateway.redis.limiter import RedisRateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(limits: EndpointLimits, time: FakeTime) -> list[tuple[bool, int]]:
    """Wrong secrets for one client id until refused, then a wait and one more attempt."""
    seen = []
    for _ in range(6):
        decision = limits.admit("cli_shop", "10.0.0.1")
        seen.append((decision.allowed, decision.retry_after_s))
        if decision.allowed:
            limits.failed("cli_shop", "10.0.0.1")
    time.now += 2
    decision = limits.admit("cli_shop", "10.0.0.1")
    seen.append((decision.allowed, decision.retry_after_s))
    return seen


def test_redis_and_in_process_back_off_alike(client: redis.Redis, prefix: str) -> None:
    def in_redis(time: FakeTime, worker: str) -> EndpointLimits:
        def make(name: str, per_minute: int, burst: int) -> RateLimiter:
            return RedisRateLimiter(client, per_minute, burst=burst, prefix=f"{prefix}{name}:",
                                    now=time)
        return EndpointLimits.build(make)

    def in_process(time: FakeTime) -> EndpointLimits:
        return EndpointLimits.build(
            lambda name, per_minute, burst: InProcessRateLimiter(per_minute, burst=burst,
                                                                 now=time))

    expected = [(True, 0)] * 4 + [(False, 2), (False, 2), (True, 0)]
    time = FakeTime()
    assert _run(in_process(time), time) == expected
    time = FakeTime()
    assert _run(in_redis(time, "a"), time) == expected
    # A second worker's limiter object sees the first one's spent budget.
    assert in_redis(time, "b").admit("cli_shop", None).allowed is False
