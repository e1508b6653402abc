"""Drop ``ix_promotion_awards_operation``: no query reads ``promotion_awards`` by operation
(member limits read ix_promotion_awards_member, reports ix_promotion_awards_funder; a return
finds what an earn applied in the earn's stored answer), and an earn that applies 35 campaigns
paid for 35 entries in it (issue 12's benchmark, docs/benchmarks.md). The foreign key to
``operations`` needs no index on this side: operations are never deleted or re-keyed.

Revision ID: 0026_awards_operation_index
Revises: 0025_member_token_cutoffs
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026_awards_operation_index"
down_revision: str | Sequence[str] | None = "0025_member_token_cutoffs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_promotion_awards_operation", table_name="promotion_awards",
                  if_exists=True)


def downgrade() -> None:
    op.create_index("ix_promotion_awards_operation", "promotion_awards", ["operation_id"],
                    if_not_exists=True)
