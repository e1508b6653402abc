"""The retry schedule: exponential back-off with full jitter.

After the n-th failed attempt the next one waits a uniformly random time in
``[0, min(CAP, BASE * 2**(n-1))]``: ceilings of 5 s, 10 s, 20 s, 40 s, 80 s, 160 s, 320 s,
640 s, 1,280 s, 2,560 s, then 1 hour for every later attempt. Full jitter (rather than a fixed
ladder) spreads the retries of many deliveries that failed together (a partner's outage) so
they do not come back as one wave. A failure after which the next attempt would fall past
``give_up_at`` (24 hours after the dispatch) ends the delivery as dead."""

from __future__ import annotations

import random
from datetime import timedelta

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
