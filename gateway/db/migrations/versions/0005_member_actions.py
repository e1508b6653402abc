"""Member actions (issue 10): ``member_requests`` keys the commands a member makes that move
points (donate, merge) by (member, idempotency key); ``ix_members_merged_into`` finds the members
merged into a survivor, whose history the survivor still reads.

Idempotent like 0003 (``IF NOT EXISTS``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0005_member_actions
Revises: 0004_member_auth
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_member_actions"
down_revision: str | Sequence[str] | None = "0004_member_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_members_merged_into", "members", ["merged_into"], if_not_exists=True)
    op.create_table(
        "member_requests",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id", "idempotency_key"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("member_requests", if_exists=True)
    op.drop_index("ix_members_merged_into", "members", if_exists=True)
