"""Coupons and referrals (issue 12, p13-coupons, decision 025): ``coupons`` (a partner's codes,
kept as HMACs, with their uses), ``coupon_redemptions`` (append-only: each redemption and each
restore), ``referral_codes`` (a member's own code) and ``referrals`` (who referred whom, and
the operation that rewarded it).

Idempotent like 0011/0012 (``if_not_exists``; the guards' DDL is idempotent), so a
``create_all`` database is adopted unchanged.

Revision ID: 0015_p13_coupons
Revises: 0014_funding_last_charge
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db import guards

revision: str = "0015_p13_coupons"
down_revision: str | Sequence[str] | None = "0014_funding_last_charge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("coupon_redemptions",)


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hint", sa.String(length=8), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("member_id", sa.String(length=40), nullable=True),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("max_uses > 0 AND uses >= 0 AND uses <= max_uses",
                           name="ck_coupons_uses"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("uq_coupons_partner_code", "coupons", ["partner_id", "code_hash"],
                    unique=True, if_not_exists=True)
    op.create_index("ix_coupons_campaign", "coupons", ["campaign_id"], if_not_exists=True)
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("uses IN (1, -1)", name="ck_coupon_redemptions_uses"),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_coupon_redemptions_member", "coupon_redemptions",
                    ["member_id", "coupon_id"], if_not_exists=True)
    op.create_index("ix_coupon_redemptions_operation", "coupon_redemptions", ["operation_id"],
                    if_not_exists=True)
    op.create_table(
        "referral_codes",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("member_id"),
        if_not_exists=True,
    )
    op.create_index("uq_referral_codes_code", "referral_codes", ["code"], unique=True,
                    if_not_exists=True)
    op.create_table(
        "referrals",
        sa.Column("referred_member_id", sa.String(length=40), nullable=False),
        sa.Column("referrer_member_id", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=True),
        sa.Column("rewarded_operation_id", sa.String(length=40), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["referred_member_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["referrer_member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("referred_member_id"),
        if_not_exists=True,
    )
    op.create_index("ix_referrals_referrer", "referrals", ["referrer_member_id"],
                    if_not_exists=True)
    for statement in guards.create_statements(_dialect(), APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_statements(_dialect(), APPEND_ONLY, function=False):
        op.execute(statement)
    for table in ("referrals", "referral_codes", "coupon_redemptions", "coupons"):
        op.drop_table(table, if_exists=True)


def _dialect() -> str:
    return op.get_context().dialect.name
