"""Partner webhooks and the event worker (issue 13, decision 030): ``webhook_subscriptions`` and
``event_deliveries`` (one row per event and consumer, run at least once by ``gateway worker``).

Idempotent like 0015/0016 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.
Neither table is append-only: a delivery's state moves (pending -> delivered | dead, and back
to pending on a replay) and a subscription's secret rotates.

Revision ID: 0017_webhooks
Revises: 0016_outbox
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_webhooks"
down_revision: str | Sequence[str] | None = "0016_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_SQL = "state = 'pending'"


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret", sa.String(length=128), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('active', 'disabled')",
                           name="ck_webhook_subscriptions_state"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_webhook_subscriptions_partner", "webhook_subscriptions",
                    ["partner_id", "state"], if_not_exists=True)
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("leased_until", sa.DateTime(), nullable=True),
        sa.Column("give_up_at", sa.DateTime(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')",
                           name="ck_event_deliveries_state"),
        sa.CheckConstraint("attempts >= 0", name="ck_event_deliveries_attempts"),
        sa.ForeignKeyConstraint(["event_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "consumer", name="uq_event_deliveries_event_consumer"),
        if_not_exists=True,
    )
    op.create_index("ix_event_deliveries_due", "event_deliveries", ["next_attempt_at"],
                    if_not_exists=True, sqlite_where=sa.text(PENDING_SQL),
                    postgresql_where=sa.text(PENDING_SQL))
    op.create_index("ix_event_deliveries_consumer", "event_deliveries", ["consumer", "id"],
                    if_not_exists=True)
    op.create_index("ix_event_deliveries_consumer_state", "event_deliveries",
                    ["consumer", "state", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_consumer_state", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_consumer", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_due", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_index("ix_webhook_subscriptions_partner", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
