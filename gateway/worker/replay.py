"""Replays of an in-process consumer's dead letters (``gateway worker-replay``).

A delivery to an in-process consumer (notifications, challenges, draws) that failed for 24 hours
is dead like a webhook's, and as consequential (a challenge's progress, a draw's entries): once
the consumer is fixed, the operator makes its dead deliveries in a time window due again, under
the same event, with a fresh 24-hour window (the consumers are idempotent under the event id).
Webhook deliveries are replayed by their partner's (``gateway webhooks replay``, GraphQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from gateway.core.errors import InvalidInput
from gateway.db.tables import event_deliveries as d
from gateway.db.uow import UnitOfWork
from gateway.webhooks import subscription_of
from gateway.webhooks.deliveries import DEAD, MAX_REPLAY, Replayed, _again


def replay_dead(engine: Engine, consumer: str, *, since: datetime, until: datetime,
                now: datetime) -> Replayed:
    """Every dead delivery to ``consumer`` created in ``[since, until)``, up to ``MAX_REPLAY``
    (ix_event_deliveries_dead, oldest first), pending again and due now."""
    if subscription_of(consumer) is not None:
        raise InvalidInput("a webhook's deliveries are replayed with gateway webhooks replay",
                           field="consumer")
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    with UnitOfWork(engine) as uow:
        ids = uow.conn.execute(
            select(d.c.id).where(d.c.consumer == consumer, d.c.state == DEAD,
                                 d.c.created_at >= since, d.c.created_at < until)
            .order_by(d.c.created_at, d.c.id).limit(MAX_REPLAY + 1)).scalars().all()
        chosen = list(ids[:MAX_REPLAY])
        if chosen:
            uow.conn.execute(_again(now).where(d.c.id.in_(chosen)))
        uow.commit()
    return Replayed(len(chosen), len(ids) > MAX_REPLAY)
