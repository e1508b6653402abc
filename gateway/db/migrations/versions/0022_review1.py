"""Review of issue 13's event pipeline: ``ix_event_deliveries_dead``, a partial index of the
dead deliveries by (consumer, created_at), so a replay of one consumer's dead letters in a time
window (``replayWebhookDeliveries``, ``gateway webhooks replay``, ``gateway worker-replay``)
searches that window only, not every dead letter the consumer ever had.

Idempotent like 0015/0016 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0022_review1
Revises: 0020_draws
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_review1"
down_revision: str | Sequence[str] | None = "0020_draws"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEAD_SQL = "state = 'dead'"


def upgrade() -> None:
    op.create_index("ix_event_deliveries_dead", "event_deliveries", ["consumer", "created_at"],
                    if_not_exists=True, sqlite_where=sa.text(DEAD_SQL),
                    postgresql_where=sa.text(DEAD_SQL))


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_dead", table_name="event_deliveries")
