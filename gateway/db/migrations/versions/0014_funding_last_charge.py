"""Funders' ``last_charge`` (issue 12, decision 023): the last charge's points, negative when
it was refused, so a charge is one UPDATE whether the funder has terms or not (before: an
UPDATE that matched nothing, then a read to tell "no terms" from "refused").

Idempotent like 0011-0013: the column is added only when missing, so a ``create_all``
database is adopted unchanged.

Revision ID: 0014_funding_last_charge
Revises: 0013_p13_tiers
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_funding_last_charge"
down_revision: str | Sequence[str] | None = "0013_p13_tiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite has no ADD COLUMN IF NOT EXISTS: the table's columns are looked at instead.
    if "last_charge" not in _columns():
        op.add_column("funders", sa.Column("last_charge", sa.BigInteger(), nullable=False,
                                           server_default="0"))


def downgrade() -> None:
    if op.get_context().as_sql or "last_charge" in _columns():
        op.drop_column("funders", "last_charge")


def _columns() -> set[str]:
    """The funders table's columns; in offline mode (``alembic upgrade --sql``, no database to
    look at) none, so the script adds the column unconditionally, like every other step."""
    if op.get_context().as_sql:
        return set()
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("funders")}
