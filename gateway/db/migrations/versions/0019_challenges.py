"""Challenges, streaks and badges (issue 13, decision 032): ``challenges`` (the current
definition), ``challenge_versions`` (append-only: every version), ``challenge_windows`` (a
member's progress per window, derived), ``challenge_progress`` (append-only: what each event did
to each challenge, UNIQUE per event and challenge) and ``member_badges``.

Idempotent like 0015/0016 (``if_not_exists``; the guards' DDL is idempotent), so a
``create_all`` database is adopted unchanged.

Revision ID: 0019_challenges
Revises: 0018_notifications
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0019_challenges"
down_revision: str | Sequence[str] | None = "0018_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("challenge_versions", "challenge_progress")


def upgrade() -> None:
    op.create_table(
        "challenges",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_challenges_owner", "challenges", ["owner", "id"], if_not_exists=True)
    op.create_table(
        "challenge_versions",
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"]),
        sa.PrimaryKeyConstraint("challenge_id", "version"),
        if_not_exists=True,
    )
    op.create_table(
        "challenge_windows",
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("window_key", sa.String(length=32), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("completions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("bonus_operation_id", sa.String(length=40), nullable=True),
        sa.Column("bonus_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("challenge_id", "member_id", "window_key"),
        if_not_exists=True,
    )
    op.create_index("ix_challenge_windows_latest", "challenge_windows",
                    ["challenge_id", "member_id", "starts_at"], if_not_exists=True)
    op.create_index("ix_challenge_windows_counts", "challenge_windows",
                    ["challenge_id", "completed_at"], if_not_exists=True)
    op.create_table(
        "challenge_progress",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("window_key", sa.String(length=32), nullable=False),
        sa.Column("purchase_operation_id", sa.String(length=40), nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("uq_challenge_progress_event", "challenge_progress",
                    ["event_id", "challenge_id"], unique=True, if_not_exists=True)
    op.create_index("ix_challenge_progress_window", "challenge_progress",
                    ["challenge_id", "member_id", "window_key"], if_not_exists=True)
    op.create_index("ix_challenge_progress_purchase", "challenge_progress",
                    ["purchase_operation_id"], if_not_exists=True)
    op.create_table(
        "member_badges",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("window_key", sa.String(length=32), nullable=False),
        sa.Column("badge", sa.String(length=32), nullable=False),
        sa.Column("awarded_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id", "challenge_id", "window_key"),
        if_not_exists=True,
    )
    op.create_index("ix_member_badges_member", "member_badges", ["member_id", "badge"],
                    if_not_exists=True)
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    for table in ("member_badges", "challenge_progress", "challenge_windows",
                  "challenge_versions", "challenges"):
        op.drop_table(table, if_exists=True)


def _dialect() -> str:
    return op.get_context().dialect.name
