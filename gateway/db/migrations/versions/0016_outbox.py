"""The transactional outbox (issue 13, decision 029): ``outbox``, one row per ledger or campaign
event, written in the transaction of its change; the worker stamps ``dispatched_at``.

Idempotent like 0011-0015 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0016_outbox
Revises: 0015_p13_coupons
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_outbox"
down_revision: str | Sequence[str] | None = "0015_p13_coupons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDISPATCHED_SQL = "dispatched_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=True),
        sa.Column("member_id", sa.String(length=40), nullable=True),
        sa.Column("operation_id", sa.String(length=40), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_outbox_undispatched", "outbox", ["id"], if_not_exists=True,
                    sqlite_where=sa.text(UNDISPATCHED_SQL),
                    postgresql_where=sa.text(UNDISPATCHED_SQL))
    op.create_index("ix_outbox_member", "outbox", ["member_id", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_outbox_member", table_name="outbox")
    op.drop_index("ix_outbox_undispatched", table_name="outbox")
    op.drop_table("outbox")
