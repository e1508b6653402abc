"""Member app tokens cut off by a password reset (decision 036): ``member_token_cutoffs``, one
row per member, the instant before which (inclusive) that member's app tokens are refused.

Idempotent like 0024 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0025_member_token_cutoffs
Revises: 0024_password_resets
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_member_token_cutoffs"
down_revision: str | Sequence[str] | None = "0024_password_resets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_token_cutoffs",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tokens_valid_from", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id"),
        if_not_exists=True,
    )
    op.create_index("ix_member_token_cutoffs_from", "member_token_cutoffs",
                    ["tokens_valid_from"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_member_token_cutoffs_from", table_name="member_token_cutoffs",
                  if_exists=True)
    op.drop_table("member_token_cutoffs", if_exists=True)
