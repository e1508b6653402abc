"""Settlement reads (issue 11): ``ix_operations_settled_lots``, a partial index on
``operations.recorded_at`` holding every operation but earns. The report's lot pass reads the
period's redemptions, captures, donations and returns through it without touching an earn; an
earn writes no entry to it (one comparison, ~0.1 µs, to know so).

No rollup table: the report is one grouped pass over the period's operations and a closed period
is served from its stored snapshot (docs/settlement.md). Idempotent like 0007, so a
``create_all`` database is adopted unchanged.

Revision ID: 0008_settlement_rollups
Revises: 0007_member_fixes
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_settlement_rollups"
down_revision: str | Sequence[str] | None = "0007_member_fixes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration states the schema of its own revision.
NOT_EARN = "kind <> 'earn'"


def upgrade() -> None:
    op.create_index("ix_operations_settled_lots", "operations", ["recorded_at"],
                    if_not_exists=True, sqlite_where=sa.text(NOT_EARN),
                    postgresql_where=sa.text(NOT_EARN))


def downgrade() -> None:
    op.drop_index("ix_operations_settled_lots", "operations", if_exists=True)
