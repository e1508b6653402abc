"""Portal sessions: who is signed in to the member portal in this browser.

The cookie carries 32 random bytes (URL-safe base64); the database keeps only their SHA-256, so
a leaked ``member_sessions`` table signs nobody in. A session lasts :data:`SESSION_TTL` (about a
working day) from sign-in, is not extended by use, and signing out revokes it at once. The
cookie's flags are the transport's business (``gateway.portal``): HttpOnly, SameSite=Lax, and
Secure in production. Nothing here commits outside its own unit of work.

:func:`cut_off_app_tokens` is the app side of "sign out everywhere": the member's OAuth access
tokens (the coalition app's, ``gateway.auth.tokens``) issued at or before an instant are refused
from then on, through ``member_token_cutoffs`` and the auth feed (decision 036)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.clock import Clock
from gateway.db.auth_changes import bump
from gateway.db.tables import member_sessions, member_token_cutoffs, members
from gateway.db.uow import UnitOfWork

SESSION_TTL = timedelta(hours=12)
MAX_TOKEN = 100  # a longer cookie value is not one of ours: refused without a lookup


def token_hash(token: str) -> str:
    """What is stored of a random token (a session cookie, a reset link): its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: Engine, clock: Clock, member_id: str) -> str:
    """A new session for ``member_id``; returns the token for the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    with UnitOfWork(engine) as uow:
        now = clock.now()
        uow.conn.execute(insert(member_sessions), {
            "token_hash": token_hash(token), "member_id": member_id, "created_at": now,
            "expires_at": now + SESSION_TTL, "revoked_at": None})
        uow.commit()
    return token


def session_member(engine: Engine, clock: Clock, token: str | None) -> str | None:
    """The member signed in by this cookie value, or None (unknown, expired, revoked, or the
    member is no longer active)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(member_sessions.c.member_id, member_sessions.c.expires_at,
                   member_sessions.c.revoked_at, members.c.status)
            .join(members, members.c.id == member_sessions.c.member_id)
            .where(member_sessions.c.token_hash == token_hash(token))
        ).first()
    if row is None or row.revoked_at is not None or row.status != "active":
        return None
    if clock.now() >= row.expires_at:
        return None
    return str(row.member_id)


def end_session(engine: Engine, clock: Clock, token: str | None) -> bool:
    """Revoke the session of this cookie value; whether there was a live one."""
    if not token or len(token) > MAX_TOKEN:
        return False
    with UnitOfWork(engine) as uow:
        revoked = uow.conn.execute(
            update(member_sessions)
            .where(member_sessions.c.token_hash == token_hash(token),
                   member_sessions.c.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        ).rowcount
        uow.commit()
    return bool(revoked)


def cut_off_app_tokens(conn: Connection, member_id: str, now: datetime) -> None:
    """In the caller's transaction: refuse every app token of the member issued at or before
    ``now`` (to the microsecond). A primary-key upsert, and the auth change counter bumped, so
    every worker's feed reloads the cut-offs (at once here, within its refresh bound
    elsewhere: ``gateway.auth.feed``). A later cut-off replaces an earlier one."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(member_token_cutoffs).values(member_id=member_id,
                                                             tokens_valid_from=now)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["member_id"], set_={"tokens_valid_from": now}))
    bump(conn)
