"""Write one ``audit_log`` row (who, when, what; never a secret).

The writer sits beside the table so any layer that records an admin act in its own transaction
(auth's client and key changes, members' legacy link import) can call it without importing the
layer that owns the act; :mod:`gateway.auth.audit` re-exports it with its refusal log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, insert

from gateway.db.tables import audit_log

JsonScalar = str | int | bool | None


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
