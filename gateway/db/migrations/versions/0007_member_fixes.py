"""Member fixes (issue 10, round 2): ``lots.merged_from`` names the absorbed member's lot a
merged lot continues, so a return after a merge refunds into (and reverses from) the survivor's
copy of the very lot its spend consumed, keeping each point's origin and expiry for settlement.

Idempotent like 0003 and 0005, so a ``create_all`` database is adopted unchanged.

Revision ID: 0007_member_fixes
Revises: 0006_member_oauth
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_member_fixes"
down_revision: str | Sequence[str] | None = "0006_member_oauth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ``alembic upgrade --sql`` writes a script for an empty database: nothing to inspect.
    offline = bool(op.get_context().as_sql)
    if offline or "merged_from" not in {
            c["name"] for c in sa.inspect(op.get_bind()).get_columns("lots")}:
        op.add_column("lots", sa.Column("merged_from", sa.Integer(), nullable=True))
    op.create_index("ix_lots_merged_from", "lots", ["merged_from"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_lots_merged_from", "lots", if_exists=True)
    with op.batch_alter_table("lots") as batch:
        batch.drop_column("merged_from")
