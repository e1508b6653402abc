"""Member identity and consent (issue 10): card numbers, profile, claim and erasure columns on
``members``; consent and closing on ``linked_accounts``; link events, link codes, consents,
credentials, portal sessions, authorization codes, server secrets; redirect URIs on clients.

Like the baseline, every step is idempotent (tables and indexes ``IF NOT EXISTS``, columns
added only when missing), so a database made by ``create_all`` from the current metadata is
adopted unchanged. Members that exist before this revision get a card number here (16 digits,
Luhn check digit, the same rule as ``gateway.members.cards``, frozen here).

Revision ID: 0003_member_identity
Revises: 0002_hot_path_indexes
Create Date: 2026-11-30
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0003_member_identity"
down_revision: str | Sequence[str] | None = "0002_hot_path_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("link_events", "link_codes", "consents", "member_credentials", "member_sessions",
          "oauth_authorization_codes", "server_secrets")
APPEND_ONLY = ("consents",)
OPEN_LINK = "closed_at IS NULL"


def upgrade() -> None:
    _column("members", sa.Column("card_number", sa.String(length=16), nullable=True))
    _column("members", sa.Column("status", sa.String(length=16), server_default="active",
                                 nullable=False))
    _column("members", sa.Column("merged_into", sa.String(length=40), nullable=True))
    _column("members", sa.Column("birth_date", sa.Date(), nullable=True))
    _column("members", sa.Column("language", sa.String(length=16), nullable=True))
    _column("members", sa.Column("activation_code_hash", sa.String(length=64), nullable=True))
    _column("members", sa.Column("claimed_at", sa.DateTime(), nullable=True))
    _column("members", sa.Column("erased_at", sa.DateTime(), nullable=True))
    _backfill_card_numbers()
    op.create_index("ix_members_card_number", "members", ["card_number"], unique=True,
                    if_not_exists=True)

    _column("linked_accounts", sa.Column("consent_via", sa.String(length=16), nullable=True))
    _column("linked_accounts", sa.Column("closed_at", sa.DateTime(), nullable=True))
    op.create_index("uq_linked_accounts_open_member", "linked_accounts",
                    ["partner_id", "member_id"], unique=True, if_not_exists=True,
                    sqlite_where=sa.text(OPEN_LINK), postgresql_where=sa.text(OPEN_LINK))
    _column("oauth_clients", sa.Column("redirect_uris", sa.Text(), server_default="",
                                       nullable=False))

    op.create_table(
        "link_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_link_events_member", "link_events", ["member_id", "id"],
                    if_not_exists=True)
    op.create_table(
        "link_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_by_partner_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("code_hash"),
        if_not_exists=True,
    )
    op.create_index("ix_link_codes_member", "link_codes", ["member_id"], if_not_exists=True)
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("via", sa.String(length=32), nullable=False),
        sa.CheckConstraint("granted IN (0, 1)", name="consent_granted_flag"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_consents_member", "consents", ["member_id", "purpose", "id"],
                    if_not_exists=True)
    op.create_table(
        "member_credentials",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id"),
        if_not_exists=True,
    )
    op.create_index("uq_member_credentials_email", "member_credentials", ["email"], unique=True,
                    if_not_exists=True)
    op.create_table(
        "member_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
        if_not_exists=True,
    )
    op.create_index("ix_member_sessions_member", "member_sessions", ["member_id"],
                    if_not_exists=True)
    op.create_table(
        "oauth_authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=80), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("access_jti", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("code_hash"),
        if_not_exists=True,
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        if_not_exists=True,
    )
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    for table in reversed(TABLES):
        op.drop_table(table)
    op.drop_index("uq_linked_accounts_open_member", "linked_accounts")
    op.drop_index("ix_members_card_number", "members")
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("redirect_uris")
    with op.batch_alter_table("linked_accounts") as batch:
        for name in ("closed_at", "consent_via"):
            batch.drop_column(name)
    with op.batch_alter_table("members") as batch:
        for name in ("erased_at", "claimed_at", "activation_code_hash", "language", "birth_date",
                     "merged_into", "status", "card_number"):
            batch.drop_column(name)


def _offline() -> bool:
    """``alembic upgrade --sql`` writes a script for an empty database: nothing to inspect."""
    return bool(op.get_context().as_sql)


def _column(table: str, column: sa.Column[object]) -> None:
    if not _offline():
        existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
        if column.name in existing:
            return
    op.add_column(table, column)


def _backfill_card_numbers() -> None:
    if _offline():
        return
    bind = op.get_bind()
    members = sa.table("members", sa.column("id", sa.String), sa.column("card_number", sa.String))
    missing = bind.execute(sa.select(members.c.id).where(members.c.card_number.is_(None)))
    taken: set[str] = set()
    for (member_id,) in missing.all():
        number = _card_number()
        while number in taken:
            number = _card_number()
        taken.add(number)
        bind.execute(members.update().where(members.c.id == member_id)
                     .values(card_number=number))


def _card_number() -> str:
    """15 random digits after the coalition's prefix 9, then the Luhn check digit."""
    body = "9" + "".join(secrets.choice("0123456789") for _ in range(14))
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:  # doubled: every second digit counting from the check digit's left
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


def _dialect() -> str:
    return op.get_context().dialect.name
