"""Trusted GraphQL documents (issue 11): ``trusted_documents`` holds the operations partners
registered in advance, keyed by the SHA-256 of their text and the partner ("" for every caller).

Idempotent like 0003 and 0005 (``if_not_exists``), so a ``create_all`` database is adopted
unchanged; ``alembic upgrade --sql`` needs no inspection here.

Revision ID: 0009_trusted_documents
Revises: 0008_settlement_rollups
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_trusted_documents"
down_revision: str | Sequence[str] | None = "0008_settlement_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("registered_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", "partner_id"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("trusted_documents", if_exists=True)
