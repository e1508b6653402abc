"""Code-guess budgets on a real Redis: every worker and host shares one budget per partner
customer and per partner (two gateways' CodeGuesses, one Redis), as the in-process one does in
one process."""

from __future__ import annotations

import pytest
import redis

from gateway.core.errors import RateLimited
from gateway.limits import RateLimiter
from gateway.members.guesses import CodeGuesses
from gateway.redis.limiter import RedisRateLimiter


def _guesses(client: redis.Redis, prefix: str) -> CodeGuesses:
    def make(per_minute: int, burst: int) -> RateLimiter:
        return RedisRateLimiter(client, per_minute, burst=burst, prefix=prefix,
                                now=lambda: 1000.0)  # a stopped clock
    return CodeGuesses.build(make)


def test_two_workers_share_one_budget(client: redis.Redis, prefix: str) -> None:
    one, two = _guesses(client, prefix), _guesses(client, prefix)
    for worker in (one, two, one, two, one):  # five attempts for f-1, from two workers
        worker.link_attempt("fuel", "f-1")
    with pytest.raises(RateLimited) as limited:
        two.link_attempt("fuel", "f-1")
    assert limited.value.retry_after_s == 12  # one attempt more every 12 s (5 a minute)
    for n in range(25):  # the partner's burst of 30, five of them spent on f-1
        (one if n % 2 else two).link_attempt("fuel", f"f-{n + 2}")
    with pytest.raises(RateLimited):
        one.link_attempt("fuel", "f-99")
    one.link_attempt("grocery", "g-1")  # another partner's budget is its own
    for _ in range(60):
        one.store_digits_attempt("fuel")
    with pytest.raises(RateLimited):
        two.store_digits_attempt("fuel")
