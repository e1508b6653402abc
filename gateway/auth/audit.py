"""One way to write an ``audit_log`` row for auth events (who, when, what; never a secret).

Admin actions on clients and keys, and refused client authentications, are recorded in the same
transaction as the change they describe (or on their own for refusals, which change nothing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, insert, text

from gateway.db.tables import audit_log

JsonScalar = str | int | bool | None


@contextmanager
def write_transaction(engine: Engine, *, exclusive: Table | None = None) -> Iterator[Connection]:
    """A committed-on-success write transaction (``BEGIN IMMEDIATE`` on SQLite, see db.engine).

    ``exclusive``: on PostgreSQL, first lock this table against other such writers (SHARE ROW
    EXCLUSIVE conflicts with itself and with writes, not with plain reads), for a check-then-
    insert no constraint covers, e.g. "create a signing key unless one is active". SQLite's
    ``BEGIN IMMEDIATE`` already serialises every writer."""
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        if exclusive is not None and conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {exclusive.name} IN SHARE ROW EXCLUSIVE MODE"))
        yield conn


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    detail: Mapping[str, JsonScalar | list[str]] | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            detail=json.dumps(dict(detail or {}), sort_keys=True),
        )
    )
