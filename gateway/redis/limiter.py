"""Per-client rate limits in Redis: GCRA in one Lua call, shared by every worker and host.

The script is the in-process limiter's arithmetic (``gateway.limits``) line for line, in
integer microseconds, so both give the same decisions for the same times. Its clock is Redis's
``TIME``: one clock for every host, so skewed gateway clocks cannot stretch a budget (a test
may pass an explicit now instead). The key holds the theoretical arrival time and expires when
it is reached: an idle client's state is equivalent to no state, so nothing else is kept.

``FailSafeLimiter`` wraps it with the configured behaviour while Redis is unreachable:
``open`` admits, ``closed`` denies with ``Decision.unavailable`` (HTTP 503). Either way no
exception reaches the request, and the breaker makes a dead Redis cost nothing per request."""

from __future__ import annotations

from collections.abc import Callable

import redis

from gateway.limits import (
    US,
    Decision,
    RateLimiter,
    default_burst,
    interval_us,
    retry_after_s,
)
from gateway.redis.health import REDIS_ERRORS, Breaker

# KEYS[1]: the client's key. ARGV: interval (us per unit of cost), burst, cost (already capped
# at the burst), now in us or "" for Redis TIME. Returns {allowed (0/1), wait in us}.
# string.format('%d') because tostring() of a Lua number keeps only 14 significant digits.
# The key lives until its time is reached plus a second: after that, no key and a key in the
# past mean the same, and the second keeps that true across clocks rounded differently.
GCRA_LUA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[4])
end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, string.format('%d', allow_at - now)}
end
local ttl_ms = math.floor((new_tat - now + 999) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return {1, '0'}
"""


class RedisRateLimiter:
    """Raises redis errors; wrap it in ``FailSafeLimiter`` to serve through an outage."""

    def __init__(
        self, client: redis.Redis, per_minute: int, *, burst: int | None = None,
        prefix: str = "gw:", now: Callable[[], float] | None = None,
    ) -> None:
        self._interval_us = interval_us(per_minute)
        self._burst = burst if burst is not None else default_burst(per_minute)
        self._prefix = f"{prefix}rl:"
        self._now = now
        # register_script runs EVALSHA and falls back to EVAL (loading it) on NOSCRIPT, so a
        # restarted Redis, which has lost its script cache, costs one extra round trip.
        self._script = client.register_script(GCRA_LUA)

    def hit(self, key: str, cost: int = 1) -> Decision:
        cost = min(max(cost, 1), self._burst)
        now = "" if self._now is None else str(round(self._now() * US))
        allowed, wait_us = self._script(
            keys=[self._prefix + key], args=[self._interval_us, self._burst, cost, now]
        )
        if int(allowed):
            return Decision(True, 0)
        return Decision(False, retry_after_s(int(wait_us)))


class FailSafeLimiter:
    """What limits do while Redis is unreachable: ``open`` admits, ``closed`` refuses (503)."""

    def __init__(self, inner: RateLimiter, breaker: Breaker, *, mode: str = "open",
                 unavailable_retry_s: int = 1) -> None:
        if mode not in ("open", "closed"):
            raise ValueError(f"failure mode must be 'open' or 'closed', not {mode!r}")
        self._inner = inner
        self._breaker = breaker
        self._fallback = (Decision(True, 0) if mode == "open"
                          else Decision(False, unavailable_retry_s, unavailable=True))

    def hit(self, key: str, cost: int = 1) -> Decision:
        if not self._breaker.allow():
            return self._fallback
        try:
            decision = self._inner.hit(key, cost)
        except REDIS_ERRORS as error:
            self._breaker.failed(error)
            return self._fallback
        self._breaker.succeeded()
        return decision
