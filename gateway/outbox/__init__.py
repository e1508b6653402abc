"""The transactional outbox (issue 13, docs/decisions/029-outbox.md): every ledger and campaign
event is one row of ``outbox``, written by :func:`emit` on the connection of the transaction
that makes the change, so an event exists if and only if its change committed.

This package only writes and reads events. Delivering them (to partners' webhooks, to members'
notifications, to challenges and draws) is the worker's (``gateway.worker``): it fans each
undispatched event out to the consumers that want it, and each consumer handles it at least once
under the event's stable id (:class:`Consumer`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select

from gateway.core.ids import new_id
from gateway.db.tables import outbox

# The event type of each ledger operation kind (one event per operation, written by the
# ledger's ``record_operation``). A kind not named here is published as ``operation.<kind>``.
OPERATION_EVENTS: Mapping[str, str] = {
    "earn": "points.earned",
    "redeem": "points.redeemed",
    "return": "points.returned",
    "authorise": "points.authorised",
    "capture": "points.captured",
    "void": "points.voided",
    "release": "points.released",
    "hold_expired": "points.hold_expired",
    "bonus": "points.bonus",
    "expire": "points.expired",
    "forfeit": "points.forfeited",
    "donate": "points.donated",
    "merge": "member.merged",
    "draw_entry": "points.draw_entered",  # entries in a prize draw bought with points
}


@dataclass(frozen=True, slots=True)
class Event:
    """One committed event. ``id`` is stable (a webhook's ``webhook-id``, a consumer's
    idempotency key); ``partner_id`` is the partner whose operation or customer it concerns
    (None: the coalition's own); ``data`` is the JSON payload."""

    id: str
    type: str
    partner_id: str | None
    member_id: str | None
    operation_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Consumer:
    """An in-process consumer of events, run by the worker. ``handle`` is called at least once
    per event of one of ``types`` (more than once after a crash or an error): it must be
    idempotent under ``event.id`` and commit its own work (one transaction on ``engine``).
    Raising makes the worker retry it later with back-off."""

    name: str
    types: frozenset[str]
    handle: Callable[[Engine, Event], None]


_INSERT = insert(outbox)


def emit(conn: Connection, type: str, *, partner_id: str | None, member_id: str | None,
         data: Mapping[str, Any], at: datetime, operation_id: str | None = None,
         occurred_at: datetime | None = None) -> str:
    """Write one event in the caller's transaction; returns its id. No commit here."""
    event_id = new_id("evt")
    conn.execute(_INSERT, {
        "id": event_id, "type": type, "partner_id": partner_id, "member_id": member_id,
        "operation_id": operation_id, "occurred_at": occurred_at or at, "recorded_at": at,
        "data": json.dumps(data, separators=(",", ":"), sort_keys=True),
        "dispatched_at": None})
    return event_id


def operation_event(kind: str) -> str:
    return OPERATION_EVENTS.get(kind, f"operation.{kind}")


_COLUMNS = (outbox.c.id, outbox.c.type, outbox.c.partner_id, outbox.c.member_id,
            outbox.c.operation_id, outbox.c.occurred_at, outbox.c.recorded_at, outbox.c.data)
# Bounded: the primary key walks forward from the cursor, ``limit`` rows at most.
_AFTER = (select(*_COLUMNS).where(outbox.c.id > bindparam("after"))
          .order_by(outbox.c.id).limit(bindparam("limit")))


def event_of(row: Any) -> Event:
    return Event(id=row.id, type=row.type, partner_id=row.partner_id, member_id=row.member_id,
                 operation_id=row.operation_id, occurred_at=row.occurred_at,
                 recorded_at=row.recorded_at, data=json.loads(row.data))


def read_events(conn: Connection, *, after: str = "", limit: int = 500,
                types: Sequence[str] | None = None) -> list[Event]:
    """Up to ``limit`` events with ids after ``after``, in id order (ids are time-ordered), of
    ``types`` if given (filtered here, the page stays bounded by ``limit``). For tests, the CLI
    and replays; the worker dispatches by its own index."""
    rows = conn.execute(_AFTER, {"after": after, "limit": limit}).all()
    events = [event_of(row) for row in rows]
    return events if types is None else [e for e in events if e.type in types]
