"""Store codes (issue 10): the rotating codes a member shows at a till, QR and digits, about a
minute each (docs/decisions/006-store-codes.md). Only the SHA-256 of the digits is kept; the
QR form's signature is recomputed from a server secret, never stored.

Idempotent like 0003 (``IF NOT EXISTS``), so a database made by ``create_all`` from the current
metadata is adopted unchanged.

Revision ID: 0004_member_auth
Revises: 0003_member_identity
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_member_auth"
down_revision: str | Sequence[str] | None = "0003_member_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_codes",
        sa.Column("digits_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=True),
        sa.Column("consented_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("digits_hash"),
        if_not_exists=True,
    )
    op.create_index("ix_store_codes_member", "store_codes", ["member_id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_store_codes_member", table_name="store_codes", if_exists=True)
    op.drop_table("store_codes", if_exists=True)
