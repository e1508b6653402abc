"""The retry schedule: exponential back-off with full jitter.

After the n-th failed attempt the next one waits a uniformly random time in
``[0, min(CAP, BASE * 2**(n-1))]``: ceilings of 5 s, 10 s, 20 s, 40 s, 80 s, 160 s, 320 s,
640 s, 1,280 s, 2,560 s, then 1 hour for every later attempt. Full jitter (rather than a fixed
ladder) spreads the retries of many deliveries that failed together (a partner's outage) so
they do not come back as one wave. When the next attempt would fall at or past ``give_up_at``
(24 hours after the dispatch), it is made at ``give_up_at`` instead; a failure then ends the
delivery as dead. (Before, that failure was the last, and the jitter could end the retries up
to an hour early.)

A receiver that answers ``429 Too Many Requests`` with ``Retry-After`` (RFC 9110 section
10.2.3: a number of seconds, or an HTTP date) is not tried again before that time when it is
later than the back-off; never later than ``give_up_at`` (the last attempt is then made at the
window's end, so a long Retry-After cannot stretch the 24 hours). A value that is neither form,
or lies in the past, is ignored: the back-off stands."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

BASE_S = 5.0
CAP_S = 3600.0
RETRY_WINDOW = timedelta(hours=24)


def ceiling_s(attempt: int) -> float:
    """The largest wait after the ``attempt``-th failure (1-based)."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    return min(CAP_S, BASE_S * 2.0 ** min(attempt - 1, 30))


def delay(attempt: int, rng: random.Random) -> timedelta:
    return timedelta(seconds=rng.uniform(0.0, ceiling_s(attempt)))


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """When ``Retry-After: value`` (received at ``now``) allows the next attempt, or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return now + timedelta(seconds=min(int(text), 10 ** 9))
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if at.tzinfo is None:  # RFC 9110: an HTTP date is in GMT
        at = at.replace(tzinfo=UTC)
    return at if at > now else None


def next_attempt(attempt: int, rng: random.Random, *, now: datetime, give_up_at: datetime,
                 retry_after_at: datetime | None) -> datetime | None:
    """When to try again after the ``attempt``-th failure at ``now``; None: give up (dead)."""
    after = now + delay(attempt, rng)
    if after >= give_up_at:
        # The jitter would throw away the end of the window: one last attempt at its end, so
        # every delivery is tried for the whole 24 hours; a failure there is the last.
        return give_up_at if now < give_up_at else None
    if retry_after_at is not None and retry_after_at > after:
        return min(retry_after_at, give_up_at)
    return after
