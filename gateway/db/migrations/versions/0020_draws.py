"""Prize draws (issue 13, p14-draws, decision 033): ``draws`` (terms, committed seed, status),
``draw_entries`` (append-only: each purchase's entries, a return's withdrawal, entries bought
with points), ``draw_entrants`` and ``draw_winners`` (written once, at close; append-only).

Idempotent like 0015/0016 (``if_not_exists``; the guards' DDL is idempotent), so a
``create_all`` database is adopted unchanged.

Revision ID: 0020_draws
Revises: 0019_challenges
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0020_draws"
down_revision: str | Sequence[str] | None = "0019_challenges"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("draw_entries", "draw_entrants", "draw_winners")


def upgrade() -> None:
    op.create_table(
        "draws",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_partner_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("opens_at", sa.DateTime(), nullable=False),
        sa.Column("closes_at", sa.DateTime(), nullable=False),
        sa.Column("purchase_partners", sa.Text(), nullable=True),
        sa.Column("min_spend_minor", sa.BigInteger(), nullable=True),
        sa.Column("min_spend_currency", sa.String(length=3), nullable=True),
        sa.Column("entries_per_purchase", sa.Integer(), nullable=True),
        sa.Column("points_per_entry", sa.BigInteger(), nullable=True),
        sa.Column("max_entries_per_member", sa.Integer(), nullable=False),
        sa.Column("one_prize_per_member", sa.Integer(), nullable=False),
        sa.Column("prizes", sa.Text(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("entrant_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("entry_list_hash", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed') AND opens_at < closes_at"
                           " AND max_entries_per_member > 0", name="ck_draws_terms"),
        sa.ForeignKeyConstraint(["owner_partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_draws_owner", "draws", ["owner_partner_id", "id"], if_not_exists=True)
    op.create_index("ix_draws_status", "draws", ["status", "closes_at"], if_not_exists=True)
    op.create_table(
        "draw_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("draw_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("operation_id", sa.String(length=40), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("draw_id", "event_id", name="uq_draw_entries_event"),
        if_not_exists=True,
    )
    op.create_index("ix_draw_entries_member", "draw_entries", ["member_id", "draw_id"],
                    if_not_exists=True)
    op.create_index("ix_draw_entries_draw", "draw_entries", ["draw_id", "operation_id"],
                    if_not_exists=True)
    op.create_table(
        "draw_entrants",
        sa.Column("draw_id", sa.String(length=40), nullable=False),
        sa.Column("entrant", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.CheckConstraint("entries > 0", name="ck_draw_entrants_entries"),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("draw_id", "entrant"),
        if_not_exists=True,
    )
    op.create_table(
        "draw_winners",
        sa.Column("draw_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("prize", sa.String(length=200), nullable=False),
        sa.Column("entrant", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("ticket", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("draw_id", "position"),
        if_not_exists=True,
    )
    op.create_index("ix_draw_winners_member", "draw_winners", ["member_id"], if_not_exists=True)
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    for table in ("draw_winners", "draw_entrants", "draw_entries", "draws"):
        op.drop_table(table, if_exists=True)


def _dialect() -> str:
    return op.get_context().dialect.name
