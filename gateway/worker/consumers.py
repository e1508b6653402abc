"""The in-process consumers ``gateway worker`` runs, besides partner webhooks (which come from
``webhook_subscriptions``). Each is a ``gateway.outbox.Consumer``; notifications, challenges and
draws add theirs here. The worker takes the tuple as a parameter, so tests pass their own."""

from __future__ import annotations

from gateway import challenges, draws, notifications
from gateway.outbox import Consumer

CONSUMERS: tuple[Consumer, ...] = (notifications.CONSUMER, challenges.CONSUMER,
                                      draws.CONSUMER)
