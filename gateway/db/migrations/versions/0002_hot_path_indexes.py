"""Hot-path indexes: every query on a request path indexed and bounded (issue 11).

- ``ix_accounts_member``: balance reads select a member's accounts by member id; without it
  every earn and balance read scanned ``accounts`` (four rows per member).
- ``ix_operations_daily_cap``: the daily earn cap sums one member's earns at one partner on one
  day; before, SQLite walked every operation of the partner.
- ``ix_operations_member_partner``: history pages one member's operations at one partner,
  newest first, reading only the page.
- ``ix_lots_operation``: a return finds the pending lot of the earn it reverses.

And ``auth_changes``, one row counting changes to OAuth clients and revoked tokens: workers
keep both in memory and poll this row instead of querying them on every request
(``gateway.auth.feed``).

Created ``IF NOT EXISTS`` like the baseline's indexes, so a database that ``create_all`` made
from the current tables is adopted unchanged.

Revision ID: 0002_hot_path_indexes
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_hot_path_indexes"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_accounts_member", "accounts", ["member_id"]),
    ("ix_operations_daily_cap", "operations", ["member_id", "partner_id", "kind", "recorded_at"]),
    ("ix_operations_member_partner", "operations", ["member_id", "partner_id", "id"]),
    ("ix_lots_operation", "lots", ["operation_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, if_not_exists=True)
    op.create_table(
        "auth_changes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.execute("INSERT INTO auth_changes (id, version) SELECT 1, 0 "
               "WHERE NOT EXISTS (SELECT 1 FROM auth_changes WHERE id = 1)")


def downgrade() -> None:
    op.drop_table("auth_changes")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table, if_exists=True)
