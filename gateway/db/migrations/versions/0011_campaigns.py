"""Campaigns (issue 12, decision 020): ``campaigns`` (headers), ``campaign_versions``
(immutable published definitions, append-only), ``campaign_counters`` (a campaign's consumed
budget, one row each) and ``promotion_awards`` (every award and reversal, append-only).

Idempotent like 0010 (``if_not_exists``; the guards' DDL is idempotent), so a ``create_all``
database is adopted unchanged.

Revision ID: 0011_campaigns
Revises: 0010_settlement_day_rollups
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0011_campaigns"
down_revision: str | Sequence[str] | None = "0010_settlement_day_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("campaign_versions", "promotion_awards")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_campaigns_owner", "campaigns", ["owner"], if_not_exists=True)
    op.create_table(
        "campaign_versions",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("campaign_id", "version"),
        if_not_exists=True,
    )
    op.create_index("ix_campaign_versions_published", "campaign_versions", ["published_at"],
                    if_not_exists=True)
    op.create_table(
        "campaign_counters",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rewards", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("campaign_id"),
        if_not_exists=True,
    )
    op.create_table(
        "promotion_awards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("funder", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("rewards", sa.Integer(), nullable=False),
        sa.Column("reward_code", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"]),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_promotion_awards_operation", "promotion_awards", ["operation_id"],
                    if_not_exists=True)
    op.create_index("ix_promotion_awards_member", "promotion_awards",
                    ["member_id", "campaign_id", "recorded_at"], if_not_exists=True)
    op.create_index("ix_promotion_awards_funder", "promotion_awards", ["funder", "recorded_at"],
                    if_not_exists=True)
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    for table in ("promotion_awards", "campaign_counters", "campaign_versions", "campaigns"):
        op.drop_table(table, if_exists=True)


def _dialect() -> str:
    return op.get_context().dialect.name
