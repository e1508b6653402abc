"""Funders' funding accounts (issue 12, p12-money): ``funders`` (one row of terms and counters
per funder that has them) and ``funding_events`` (append-only: terms, top-ups, alerts).

Idempotent like 0011 (``if_not_exists``; the guards' DDL is idempotent), so a ``create_all``
database is adopted unchanged.

Revision ID: 0012_p12_money
Revises: 0011_campaigns
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0012_p12_money"
down_revision: str | Sequence[str] | None = "0011_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("funding_events",)


def upgrade() -> None:
    op.create_table(
        "funders",
        sa.Column("funder", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("limit_points", sa.BigInteger(), nullable=False),
        sa.Column("funded_points", sa.BigInteger(), nullable=False),
        sa.Column("issued_points", sa.BigInteger(), nullable=False),
        sa.Column("reversed_points", sa.BigInteger(), nullable=False),
        sa.Column("alerts", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("mode IN ('prepaid', 'credit')", name="ck_funders_mode"),
        sa.CheckConstraint("policy IN ('refuse', 'alert')", name="ck_funders_policy"),
        sa.CheckConstraint("limit_points >= 0 AND funded_points >= 0 AND issued_points >= 0 "
                           "AND reversed_points >= 0", name="ck_funders_points"),
        sa.PrimaryKeyConstraint("funder"),
        if_not_exists=True,
    )
    op.create_table(
        "funding_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("funder", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_funding_events_funder", "funding_events", ["funder", "id"],
                    if_not_exists=True)
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    for table in ("funding_events", "funders"):
        op.drop_table(table, if_exists=True)


def _dialect() -> str:
    return op.get_context().dialect.name
