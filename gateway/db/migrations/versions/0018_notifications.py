"""Member notifications (issue 13, decision 031): ``notifications`` (the member's feed, one row
per notification, unique per member, kind and event), ``notification_emails`` (the email
queue), ``notification_preferences``, ``notification_tiers`` (the last tier told),
``notification_jobs`` (where each scheduled job has got to), and ``ix_lots_expires_at`` for the
expiring-points job.

Idempotent like 0011-0016 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0018_notifications
Revises: 0017_webhooks
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_notifications"
down_revision: str | Sequence[str] | None = "0017_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_EMAIL_SQL = "status = 'pending'"


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("uq_notifications_event", "notifications",
                    ["member_id", "kind", "event_id"], unique=True, if_not_exists=True)
    op.create_index("ix_notifications_member", "notifications", ["member_id", "id"],
                    if_not_exists=True)
    op.create_table(
        "notification_emails",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')",
                           name="ck_notification_emails_status"),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("uq_notification_emails_notification", "notification_emails",
                    ["notification_id"], unique=True, if_not_exists=True)
    op.create_index("ix_notification_emails_due", "notification_emails",
                    ["next_attempt_at", "id"], if_not_exists=True,
                    sqlite_where=sa.text(PENDING_EMAIL_SQL),
                    postgresql_where=sa.text(PENDING_EMAIL_SQL))
    op.create_table(
        "notification_preferences",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("email_enabled", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("email_enabled IN (0, 1)", name="ck_notification_preferences_email"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id"),
        if_not_exists=True,
    )
    op.create_table(
        "notification_tiers",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tier_id", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id"),
        if_not_exists=True,
    )
    op.create_table(
        "notification_jobs",
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("cursor_at", sa.DateTime(), nullable=False),
        sa.Column("cursor_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job"),
        if_not_exists=True,
    )
    op.create_index("ix_lots_expires_at", "lots", ["expires_at", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_lots_expires_at", table_name="lots")
    op.drop_table("notification_jobs")
    op.drop_table("notification_tiers")
    op.drop_table("notification_preferences")
    op.drop_index("ix_notification_emails_due", table_name="notification_emails")
    op.drop_index("uq_notification_emails_notification", table_name="notification_emails")
    op.drop_table("notification_emails")
    op.drop_index("uq_notifications_event", table_name="notifications")
    op.drop_index("ix_notifications_member", table_name="notifications")
    op.drop_table("notifications")
