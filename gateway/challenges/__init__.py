"""Challenges, streaks and badges (issue 13, decision 032; docs/challenges.md).

Coalition challenges (``partners/catalog/coalition/challenges.toml``, ``gateway challenges
sync``) and partners' own (``defineChallenge`` under ``offers:manage``, or the CLI) count
members' qualifying purchases per window; completing one pays a bonus funded by the
challenge's owner and settled like any promotion, and gives a badge the member keeps.

Progress runs from the outbox, never in the earn's transaction: :data:`CONSUMER` (an
in-process ``gateway.outbox.Consumer``) handles ``points.earned`` and ``points.returned``,
idempotent under the event id. :func:`consumer` builds one with another clock (tests)."""

from __future__ import annotations

from functools import partial

from gateway.challenges.progress import TYPES, handle
from gateway.core.clock import Clock, SystemClock
from gateway.outbox import Consumer

NAME = "challenges"


def consumer(clock: Clock) -> Consumer:
    return Consumer(NAME, TYPES, partial(handle, clock=clock))


CONSUMER: Consumer = consumer(SystemClock())
