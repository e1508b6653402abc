"""Exact per-day settlement rollups (issue 11, decision 016): ``settlement_rollup_days`` marks
each UTC day of ``recorded_at`` whose grouped sums are stored, ``settlement_rollups`` holds
them. Both append-only (the guards of ``gateway.db.guards``, for this frozen list).

Idempotent like 0009 (``if_not_exists``; the guards' DDL is idempotent), so a ``create_all``
database is adopted unchanged; ``alembic upgrade --sql`` needs no inspection here.

Revision ID: 0010_settlement_day_rollups
Revises: 0009_trusted_documents
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0010_settlement_day_rollups"
down_revision: str | Sequence[str] | None = "0009_trusted_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("settlement_rollup_days", "settlement_rollups")


def upgrade() -> None:
    op.create_table(
        "settlement_rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", sa.DateTime(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
        if_not_exists=True,
    )
    op.create_table(
        "settlement_rollups",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("part", sa.String(length=4), nullable=False),
        sa.Column("side", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=True),
        sa.Column("rule_partner_id", sa.String(length=64), nullable=True),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("adjusts", sa.String(length=40), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("part IN ('flow', 'lot')", name="settlement_rollup_part"),
        sa.ForeignKeyConstraint(["day"], ["settlement_rollup_days.day"]),
        sa.PrimaryKeyConstraint("day", "seq"),
        if_not_exists=True,
    )
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    op.drop_table("settlement_rollups", if_exists=True)
    op.drop_table("settlement_rollup_days", if_exists=True)


def _dialect() -> str:
    return op.get_context().dialect.name
