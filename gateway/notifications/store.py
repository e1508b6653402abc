"""The member's notifications in the database: write one (consents and preferences checked in
the same transaction), read the feed, mark items read, and the email preference.

:func:`notify` is the one writer. It runs inside the caller's transaction (an event consumer's
or a job batch's) and is idempotent: the unique index (member_id, kind, event_id) answers a
second write of the same notification with nothing, so a redelivered event or a job run twice
never notifies twice, and no email is queued for it again.

Every read starts from the member id, through an index whose leading column is that id
(``ix_notifications_member``, ``ix_consents_member``, primary keys), and is bounded by a page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.tables import (
    consents,
    member_credentials,
    members,
    notification_emails,
    notification_preferences,
    notifications,
)
from gateway.db.uow import UnitOfWork
from gateway.members.viewer import active
from gateway.notifications.model import (
    COALITION_MARKETING,
    PARTNER_MARKETING,
    Draft,
    FeedPage,
    Notification,
    Preferences,
    is_marketing,
)

MAX_PAGE = 100
MAX_MARKED = 100  # ids per markNotificationsRead
MAX_UNREAD_COUNTED = 99  # the badge says "99+" beyond


# --- consents and preferences -----------------------------------------------------------------
def _latest_consent(conn: Connection, member_id: str, purpose: str,
                    partner_id: str | None) -> bool:
    """The member's latest choice for (purpose, partner): given or not (none: not given).
    ``ix_consents_member`` (member_id, purpose, id), newest first: a few rows of this member."""
    where = [consents.c.member_id == member_id, consents.c.purpose == purpose,
             consents.c.partner_id.is_(None) if partner_id is None
             else consents.c.partner_id == partner_id]
    granted = conn.execute(select(consents.c.granted).where(*where)
                           .order_by(consents.c.id.desc()).limit(1)).scalar_one_or_none()
    return bool(granted)


def marketing_allowed(conn: Connection, member_id: str, partner_id: str | None) -> bool:
    """The coalition's marketing needs ``coalition_marketing``; a partner's offer needs that
    and the member's ``marketing`` consent for the partner (decision 031)."""
    if not _latest_consent(conn, member_id, COALITION_MARKETING, None):
        return False
    return partner_id is None or _latest_consent(conn, member_id, PARTNER_MARKETING, partner_id)


def _email_enabled(conn: Connection, member_id: str) -> bool:
    row = conn.execute(select(notification_preferences.c.email_enabled)
                       .where(notification_preferences.c.member_id == member_id)
                       ).scalar_one_or_none()
    return True if row is None else bool(row)


def _has_address(conn: Connection, member_id: str) -> bool:
    return conn.execute(select(member_credentials.c.member_id)
                        .where(member_credentials.c.member_id == member_id)).first() is not None


def is_active(conn: Connection, member_id: str) -> bool:
    status = conn.execute(select(members.c.status).where(members.c.id == member_id)
                          ).scalar_one_or_none()
    return status == "active"


# --- writing ----------------------------------------------------------------------------------
def _insert_new(conn: Connection, values: dict[str, object]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new row's id, None if it existed."""
    keys = ["member_id", "kind", "event_id"]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(notifications).values(**values)
                 .on_conflict_do_nothing(index_elements=keys).returning(notifications.c.id))
    found = conn.execute(statement).scalar_one_or_none()
    return None if found is None else int(found)


def notify(conn: Connection, now: datetime, draft: Draft) -> int | None:
    """Write ``draft`` to the member's feed and queue its email, in the caller's transaction.
    Returns the new notification's id; None when it is not written: the member is not active,
    a marketing one lacks consent, or it was written before."""
    if not is_active(conn, draft.member_id):
        return None
    if is_marketing(draft.kind) and not marketing_allowed(conn, draft.member_id,
                                                         draft.partner_id):
        return None
    notification_id = _insert_new(conn, {
        "member_id": draft.member_id, "kind": str(draft.kind), "event_id": draft.event_id,
        "title": draft.title, "body": draft.body, "data": draft.data_json(),
        "created_at": now, "read_at": None})
    if notification_id is None:
        return None
    if _email_enabled(conn, draft.member_id) and _has_address(conn, draft.member_id):
        conn.execute(insert(notification_emails), {
            "notification_id": notification_id, "member_id": draft.member_id,
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now})
    return notification_id


# --- the feed ---------------------------------------------------------------------------------
def encode_cursor(notification_id: int) -> str:
    return base64.urlsafe_b64encode(f"n:{notification_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("n:"):
            raise ValueError(text)
        found = int(text[2:])
        if not 0 < found < 2**63:  # past a BIGINT: the database would refuse it (a 500)
            raise ValueError(text)
        return found
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise InvalidInput("after is not a cursor of this list", field="after") from error


_COLUMNS = (notifications.c.id, notifications.c.kind, notifications.c.title,
            notifications.c.body, notifications.c.data, notifications.c.created_at,
            notifications.c.read_at)
# ix_notifications_member (member_id, id), walked backwards from the cursor: ``limit`` rows.
_NEWEST = (select(*_COLUMNS).where(notifications.c.member_id == bindparam("member_id"))
           .order_by(notifications.c.id.desc()).limit(bindparam("limit")))
_PAGE = _NEWEST.where(notifications.c.id < bindparam("before"))
# The member's unread ones, at most MAX_UNREAD_COUNTED + 1 rows of the same index.
_UNREAD = select(func.count()).select_from(
    select(notifications.c.id)
    .where(notifications.c.member_id == bindparam("member_id"),
           notifications.c.read_at.is_(None))
    .limit(MAX_UNREAD_COUNTED + 1).subquery())


def feed(engine: Engine, member_id: str, first: int, after: str | None) -> FeedPage:
    """A page of the member's notifications, newest first."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    params: dict[str, object] = {"member_id": member_id, "limit": first + 1}
    if after is not None:
        params["before"] = decode_cursor(after)
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(_NEWEST if after is None else _PAGE, params).all()
        unread = int(uow.conn.execute(_UNREAD, {"member_id": member_id}).scalar_one())
    items = tuple(Notification(id=int(r.id), kind=str(r.kind), title=str(r.title),
                               body=str(r.body), data=json.loads(r.data),
                               created_at=r.created_at, read_at=r.read_at)
                  for r in rows[:first])
    return FeedPage(items=items, has_next=len(rows) > first,
                    end_cursor=encode_cursor(items[-1].id) if items else None, unread=unread)


def mark_read(engine: Engine, clock: Clock, member_id: str,
              ids: Sequence[int] | None) -> int:
    """Mark the member's notifications read: those of ``ids`` (others' ids, and ids already
    read, change nothing), or every unread one when ``ids`` is None. Returns how many changed."""
    if ids is not None and len(ids) > MAX_MARKED:
        raise InvalidInput(f"at most {MAX_MARKED} ids at once", field="ids")
    where = [notifications.c.member_id == member_id, notifications.c.read_at.is_(None)]
    if ids is not None:
        if not ids:
            return 0
        where.append(notifications.c.id.in_(list(ids)))
    with UnitOfWork(engine) as uow:
        changed = uow.conn.execute(update(notifications).where(*where)
                                   .values(read_at=clock.now())).rowcount
        uow.commit()
    return int(changed or 0)


def preferences(engine: Engine, member_id: str) -> Preferences:
    with UnitOfWork(engine, write=False) as uow:
        return Preferences(_email_enabled(uow.conn, member_id),
                           _has_address(uow.conn, member_id))


def set_email(engine: Engine, clock: Clock, member_id: str, enabled: bool) -> Preferences:
    """Turn the member's notification emails on or off (the feed is kept either way). Off:
    emails still waiting are not sent (the sender checks again)."""
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        active(conn, member_id)  # UNKNOWN_MEMBER once merged or erased
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        values = {"member_id": member_id, "email_enabled": 1 if enabled else 0,
                  "updated_at": clock.now()}
        statement = dialect.insert(notification_preferences).values(**values)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["member_id"],
            set_={"email_enabled": statement.excluded.email_enabled,
                  "updated_at": statement.excluded.updated_at}))
        found = Preferences(enabled, _has_address(conn, member_id))
        uow.commit()
    return found


def email_enabled(conn: Connection, member_id: str) -> bool:
    return _email_enabled(conn, member_id)
