"""Password resets (decision 036): ``password_resets``, one row per emailed link (the token's
SHA-256, never the token), 30 minutes, single use.

Idempotent like 0015/0016 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0024_password_resets
Revises: 0023_bounded
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_password_resets"
down_revision: str | Sequence[str] | None = "0023_bounded"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
        if_not_exists=True,
    )
    op.create_index("ix_password_resets_member", "password_resets", ["member_id"],
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_password_resets_member", table_name="password_resets", if_exists=True)
    op.drop_table("password_resets", if_exists=True)
