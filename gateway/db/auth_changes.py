"""The auth change counter: one row bumped with every change to clients or revocations.

Every writer of ``oauth_clients``, ``revoked_tokens`` or ``member_token_cutoffs`` calls
:func:`bump` in its own transaction, so the counter moves exactly when (and only once) the
change is committed. Readers (``gateway.auth.feed``) compare it with the value they loaded at,
one primary-key read. It sits in ``db`` because writers below ``auth`` bump it too (a password
reset, ``gateway.members.password_reset``, cuts off the member's app tokens)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from gateway.db.tables import auth_changes

_ROW = 1


def bump(conn: Connection) -> None:
    """Count one change, in the caller's transaction."""
    done = conn.execute(
        update(auth_changes).where(auth_changes.c.id == _ROW)
        .values(version=auth_changes.c.version + 1)
    )
    if done.rowcount == 0:  # a database migrated without its row: create it
        conn.execute(insert(auth_changes).values(id=_ROW, version=1))


def version(conn: Connection) -> int:
    found = conn.execute(
        select(auth_changes.c.version).where(auth_changes.c.id == _ROW)
    ).scalar_one_or_none()
    return int(found or 0)
