"""Tiers and segments (issue 12, p13-tiers, decision 026): ``tier_progress`` (a member's
qualifying points per month), ``segments`` (partners' segment definitions) and
``member_segments`` (who is in each, as of the last refresh).

None is append-only: ``tier_progress`` is a counter upserted by earns and returns (the
operations are the record), and a segment's membership is replaced at each refresh. Idempotent
like 0011/0012 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0013_p13_tiers
Revises: 0012_p12_money
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_p13_tiers"
down_revision: str | Sequence[str] | None = "0012_p12_money"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tier_progress",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id", "month"),
        if_not_exists=True,
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("member_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_segments_owner", "segments", ["owner", "id"], if_not_exists=True)
    op.create_table(
        "member_segments",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("segment_id", "member_id"),
        if_not_exists=True,
    )
    op.create_index("ix_member_segments_member", "member_segments", ["member_id", "segment_id"],
                    if_not_exists=True)


def downgrade() -> None:
    for table in ("member_segments", "segments", "tier_progress"):
        op.drop_table(table, if_exists=True)
