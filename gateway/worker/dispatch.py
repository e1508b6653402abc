"""Dispatch: undispatched outbox rows become delivery rows, one per interested consumer.

One short transaction per batch: claim up to ``limit`` undispatched events by the partial index
``ix_outbox_undispatched`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers take
different events; SQLite's single writer serialises them), read the active subscriptions of the
batch's partners (``ix_webhook_subscriptions_partner``, at most 10 each), insert the deliveries
(``UNIQUE (event_id, consumer)``, inserted with ON CONFLICT DO NOTHING, so a batch redone after a
crash cannot double them) and stamp ``dispatched_at``. The rows and the stamp commit together:
an event is either dispatched with all its deliveries or not at all.

Who is interested: each in-process consumer whose ``types`` hold the event's type, and each
active webhook subscription *of the event's own partner* (an event of the coalition, with no
partner, goes to no webhook) whose filter matches and which existed when the event was
recorded (a new subscription does not receive the backlog)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.ids import new_id
from gateway.db.tables import event_deliveries, outbox, webhook_subscriptions
from gateway.db.uow import UnitOfWork
from gateway.outbox import Consumer
from gateway.webhooks import consumer_of
from gateway.webhooks.subscriptions import matches
from gateway.worker.backoff import RETRY_WINDOW


@dataclass(frozen=True, slots=True)
class Dispatched:
    events: int
    deliveries: int


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(event_deliveries).on_conflict_do_nothing(
            index_elements=["event_id", "consumer"])
    return sqlite.insert(event_deliveries).on_conflict_do_nothing(
        index_elements=["event_id", "consumer"])


def dispatch(engine: Engine, consumers: Sequence[Consumer], *, now: datetime,
             limit: int) -> Dispatched:
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        claim = (select(outbox.c.id, outbox.c.type, outbox.c.partner_id, outbox.c.recorded_at)
                 .where(outbox.c.dispatched_at.is_(None)).order_by(outbox.c.id).limit(limit))
        if conn.dialect.name == "postgresql":
            claim = claim.with_for_update(skip_locked=True)
        events = conn.execute(claim).all()
        if not events:
            return Dispatched(0, 0)
        webhooks = _subscriptions(conn, {e.partner_id for e in events if e.partner_id})
        rows: list[dict[str, Any]] = []
        for event in events:
            names = [c.name for c in consumers if event.type in c.types]
            names += [consumer_of(s.id) for s in webhooks.get(event.partner_id, ())
                      if s.created_at <= event.recorded_at
                      and matches(json.loads(s.event_types), event.type)]
            rows += [{"id": new_id("dlv"), "event_id": event.id, "consumer": name,
                      "state": "pending", "attempts": 0, "next_attempt_at": now,
                      "leased_until": None,
                      # 24 hours of retries from the first attempt (dispatch), not from the
                      # event: a backlog older than a day (a worker outage) still gets them
                      "give_up_at": max(now, event.recorded_at) + RETRY_WINDOW,
                      "last_status": None, "last_error": None, "delivered_at": None,
                      "created_at": now} for name in names]
        if rows:
            conn.execute(_insert_ignoring_duplicates(conn), rows)
        conn.execute(update(outbox).where(outbox.c.id.in_([e.id for e in events]))
                     .values(dispatched_at=now))
        uow.commit()
    return Dispatched(len(events), len(rows))


def _subscriptions(conn: Connection, partner_ids: set[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    if not partner_ids:
        return found
    s = webhook_subscriptions
    for row in conn.execute(select(s.c.id, s.c.partner_id, s.c.event_types, s.c.created_at)
                            .where(s.c.partner_id.in_(sorted(partner_ids)),
                                   s.c.state == "active")):
        found[row.partner_id].append(row)
    return found
