"""The in-process consumers ``gateway worker`` runs, besides partner webhooks (which come from
``webhook_subscriptions``). Each is a ``gateway.outbox.Consumer``; notifications, challenges and
draws add theirs here. The worker takes the tuple as a parameter, so tests pass their own, or
:func:`build` them with their clock (``gateway worker`` builds them with its context's)."""

from __future__ import annotations

from gateway import challenges, draws, notifications
from gateway.core.clock import Clock
from gateway.notifications.consumer import ProgrammeSource, default_consumer, make_consumer
from gateway.outbox import Consumer


def build(clock: Clock, programme: ProgrammeSource | None = None) -> tuple[Consumer, ...]:
    """The production consumers with ``clock`` as their "now", and the tier programme
    ``programme`` returns for notifications (default: the catalog the settings name)."""
    notes = (default_consumer(clock) if programme is None
             else make_consumer(clock, programme))
    return (notes, challenges.consumer(clock), draws.CONSUMER)


CONSUMERS: tuple[Consumer, ...] = (notifications.CONSUMER, challenges.CONSUMER,
                                      draws.CONSUMER)
