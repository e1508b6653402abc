"""A partner's view of its deliveries, and replays.

A replay makes a delivery pending again, due now, with a fresh 24-hour window: the worker sends
the same event again under the same ``webhook-id`` (receivers deduplicate by it). One delivery
by id, or every dead delivery of a subscription created in a time window (at most
``MAX_REPLAY`` a call; ``more`` says whether to call again)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Engine,
    Update,
    literal_column,
    or_,
    select,
    update,
)

from gateway.core.errors import InvalidInput, NotFound
from gateway.db.tables import event_deliveries as d
from gateway.db.tables import outbox
from gateway.db.uow import UnitOfWork
from gateway.webhooks import consumer_of, subscription_of, subscriptions

STATES = ("pending", "delivered", "dead")
RETRY_WINDOW = timedelta(hours=24)
MAX_REPLAY = 1000
# ``state = 'dead'`` as a literal, exactly as the partial index ix_event_deliveries_dead states it
DEAD: ColumnClause[Any] = literal_column("'dead'")


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None  # pending only
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: tuple[Delivery, ...]
    has_next: bool
    end_cursor: str | None


@dataclass(frozen=True, slots=True)
class Replayed:
    count: int
    more: bool


_COLUMNS = (d.c.id, d.c.consumer, d.c.event_id, outbox.c.type, d.c.state, d.c.attempts,
            d.c.next_attempt_at, d.c.last_status, d.c.last_error, d.c.delivered_at,
            d.c.created_at)


def _of(r: Any) -> Delivery:
    return Delivery(id=r.id, subscription_id=subscription_of(r.consumer) or "",
                    event_id=r.event_id, event_type=r.type, state=r.state, attempts=r.attempts,
                    next_attempt_at=r.next_attempt_at if r.state == "pending" else None,
                    last_status=r.last_status, last_error=r.last_error,
                    delivered_at=r.delivered_at, created_at=r.created_at)


def cursor_of(delivery_id: str) -> str:
    return base64.urlsafe_b64encode(f"delivery:{delivery_id}".encode()).decode()


def _decode(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("delivery:"):
        raise InvalidInput("after is not a cursor this API issued", field="after")
    return text[len("delivery:"):]


def listed(engine: Engine, partner_id: str, subscription_id: str, *, state: str | None,
           first: int, after: str | None) -> DeliveryPage:
    """Newest first. ix_event_deliveries_consumer (consumer, id), or with a state
    ix_event_deliveries_consumer_state (consumer, state, id); the event by primary key."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    start = None if after is None else _decode(after)
    with UnitOfWork(engine, write=False) as uow:
        found = subscriptions.own(uow.conn, partner_id, subscription_id)
        query = (select(*_COLUMNS).join(outbox, outbox.c.id == d.c.event_id)
                 .where(d.c.consumer == consumer_of(found.id)))
        if state is not None:
            query = query.where(d.c.state == state)
        if start is not None:
            query = query.where(d.c.id < start)
        rows = uow.conn.execute(query.order_by(d.c.id.desc()).limit(first + 1)).all()
    items = tuple(_of(r) for r in rows[:first])
    return DeliveryPage(items, len(rows) > first, cursor_of(items[-1].id) if items else None)


def replay(engine: Engine, partner_id: str, delivery_id: str, *, now: datetime) -> Delivery:
    """Send one delivery again, now: a delivered or dead one, or a pending one waiting for its
    next try. A pending one a worker holds (its lease not run out: it may be sending it right
    now) is left as it is and answered as such: resetting it would let a second worker claim
    and send it beside the first (decision 030). The condition is in the UPDATE itself, so a
    claim committed just before the replay is seen (PostgreSQL re-checks it on the locked
    row; SQLite runs one writer at a time)."""
    with UnitOfWork(engine) as uow:
        row = uow.conn.execute(select(d.c.consumer).where(d.c.id == str(delivery_id))
                               ).one_or_none()
        subscription_id = None if row is None else subscription_of(row.consumer)
        if subscription_id is None:
            raise NotFound("no webhook delivery of yours has this id", field="id")
        try:
            subscriptions.own(uow.conn, partner_id, subscription_id)
        except NotFound:
            raise NotFound("no webhook delivery of yours has this id", field="id") from None
        uow.conn.execute(_again(now).where(d.c.id == str(delivery_id), _not_held(now)))
        found = uow.conn.execute(select(*_COLUMNS).join(outbox, outbox.c.id == d.c.event_id)
                                 .where(d.c.id == str(delivery_id))).one()
        uow.commit()
    return _of(found)


def replay_dead(engine: Engine, partner_id: str, subscription_id: str, *, since: datetime,
                until: datetime, now: datetime) -> Replayed:
    """Send again every dead delivery of the subscription created in ``[since, until)``, up to
    ``MAX_REPLAY`` of them (ix_event_deliveries_dead: the window's dead rows only, oldest
    first)."""
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(f"{name} must carry a time zone (e.g. Z)", field=name)
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    with UnitOfWork(engine) as uow:
        found = subscriptions.own(uow.conn, partner_id, subscription_id)
        ids = uow.conn.execute(
            select(d.c.id).where(d.c.consumer == consumer_of(found.id), d.c.state == DEAD,
                                 d.c.created_at >= since, d.c.created_at < until)
            .order_by(d.c.created_at, d.c.id).limit(MAX_REPLAY + 1)).scalars().all()
        chosen = list(ids[:MAX_REPLAY])
        if chosen:
            uow.conn.execute(_again(now).where(d.c.id.in_(chosen)))
        uow.commit()
    return Replayed(len(chosen), len(ids) > MAX_REPLAY)


def _not_held(now: datetime) -> ColumnElement[bool]:
    """Not under a live worker's claim (a pending row whose lease has not run out)."""
    return or_(d.c.state != "pending", d.c.leased_until.is_(None), d.c.leased_until <= now)


def _again(now: datetime) -> Update:
    return update(d).values(state="pending", next_attempt_at=now, leased_until=None,
                            give_up_at=now + RETRY_WINDOW, delivered_at=None)
