"""Export of everything the gateway holds about a member, as JSON (GDPR art. 20).

One read transaction, so the parts agree with each other. Secrets are not data about the member
and are left out (password hash, session and code hashes); everything else is there: profile,
sign-in email, sessions' times, links (open and closed) and their events, consents (every
event), link codes' times, balances, lots, holds, every operation with its stored answer, and
(decision 025) the member's referral code, their own referral (not who referred them: that is
another person's data), how many they referred, and their coupon redemptions; (issue 13) their
notification feed and email preference, badges and prize draw entries."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from gateway.core.clock import Clock
from gateway.core.errors import UnknownMember
from gateway.db.tables import (
    accounts,
    consents,
    coupon_redemptions,
    coupons,
    draw_entries,
    holds,
    link_codes,
    link_events,
    linked_accounts,
    lots,
    member_badges,
    member_credentials,
    member_sessions,
    members,
    notification_preferences,
    notifications,
    operations,
    referral_codes,
    referrals,
)
from gateway.db.uow import UnitOfWork

FORMAT = "coalition-gateway/member-export/1"


def export_member(engine: Engine, clock: Clock, member_id: str) -> str:
    """Canonical JSON (sorted keys) of the member's data."""
    with UnitOfWork(engine, write=False) as uow:
        conn = uow.conn
        profile = _rows(conn, select(
            members.c.card_number, members.c.status, members.c.created_at,
            members.c.birth_date, members.c.language, members.c.claimed_at,
        ).where(members.c.id == member_id))
        if not profile:
            raise UnknownMember("no such member")
        body: dict[str, Any] = {
            "format": FORMAT,
            "exported_at": clock.now(),
            "profile": profile[0],
            "credentials": _rows(conn, select(
                member_credentials.c.email, member_credentials.c.created_at,
                member_credentials.c.updated_at).where(
                member_credentials.c.member_id == member_id)),
            "sessions": _rows(conn, select(
                member_sessions.c.created_at, member_sessions.c.expires_at,
                member_sessions.c.revoked_at).where(member_sessions.c.member_id == member_id)
                .order_by(member_sessions.c.created_at)),
            "links": _rows(conn, select(
                linked_accounts.c.partner_id, linked_accounts.c.customer_id,
                linked_accounts.c.linked_at, linked_accounts.c.consent_via,
                linked_accounts.c.closed_at).where(linked_accounts.c.member_id == member_id)
                .order_by(linked_accounts.c.partner_id, linked_accounts.c.linked_at)),
            "link_events": _rows(conn, select(
                link_events.c.at, link_events.c.partner_id, link_events.c.customer_id,
                link_events.c.action, link_events.c.via, link_events.c.actor)
                .where(link_events.c.member_id == member_id).order_by(link_events.c.id)),
            "link_codes": _rows(conn, select(
                link_codes.c.created_at, link_codes.c.expires_at, link_codes.c.used_at,
                link_codes.c.used_by_partner_id).where(link_codes.c.member_id == member_id)
                .order_by(link_codes.c.created_at)),
            "consents": _rows(conn, select(
                consents.c.purpose, consents.c.partner_id, consents.c.granted, consents.c.at,
                consents.c.via).where(consents.c.member_id == member_id)
                .order_by(consents.c.id)),
            "balances": {r["kind"]: r["balance"] for r in _rows(conn, select(
                accounts.c.kind, accounts.c.balance).where(accounts.c.member_id == member_id))},
            "lots": _rows(conn, select(
                lots.c.origin_partner_id, lots.c.points, lots.c.remaining, lots.c.earned_at,
                lots.c.available_at, lots.c.expires_at, lots.c.pending)
                .where(lots.c.member_id == member_id).order_by(lots.c.id)),
            "holds": _rows(conn, select(
                holds.c.id, holds.c.partner_id, holds.c.points, holds.c.status,
                holds.c.captured_points, holds.c.created_at, holds.c.expires_at)
                .where(holds.c.member_id == member_id).order_by(holds.c.created_at)),
            "operations": [
                {**row, "result": json.loads(row["result"])}
                for row in _rows(conn, select(
                    operations.c.id, operations.c.partner_id, operations.c.kind,
                    operations.c.channel, operations.c.purchase_id, operations.c.amount_minor,
                    operations.c.currency, operations.c.points, operations.c.occurred_at,
                    operations.c.recorded_at, operations.c.result)
                    .where(operations.c.member_id == member_id).order_by(operations.c.id))],
            "referral_code": conn.execute(select(referral_codes.c.code).where(
                referral_codes.c.member_id == member_id)).scalar_one_or_none(),
            "referral": _rows(conn, select(
                referrals.c.recorded_at, referrals.c.via, referrals.c.partner_id,
                referrals.c.rewarded_operation_id, referrals.c.rewarded_at)
                .where(referrals.c.referred_member_id == member_id)),
            "members_referred": conn.execute(select(func.count()).select_from(referrals).where(
                referrals.c.referrer_member_id == member_id)).scalar_one(),
            "coupon_redemptions": _rows(conn, select(
                coupons.c.partner_id, coupons.c.campaign_id, coupon_redemptions.c.operation_id,
                coupon_redemptions.c.uses, coupon_redemptions.c.recorded_at)
                .join(coupons, coupons.c.id == coupon_redemptions.c.coupon_id)
                .where(coupon_redemptions.c.member_id == member_id)
                .order_by(coupon_redemptions.c.id)),
            # Issue 13: the feed (ix_notifications_member), emails on/off, badges
            # (ix_member_badges_member) and prize draw entries (ix_draw_entries_member).
            "notifications": _rows(conn, select(
                notifications.c.kind, notifications.c.title, notifications.c.body,
                notifications.c.created_at, notifications.c.read_at)
                .where(notifications.c.member_id == member_id).order_by(notifications.c.id)),
            "notification_email": conn.execute(select(
                notification_preferences.c.email_enabled).where(
                notification_preferences.c.member_id == member_id)).scalar_one_or_none() != 0,
            "badges": _rows(conn, select(
                member_badges.c.challenge_id, member_badges.c.window_key, member_badges.c.badge,
                member_badges.c.awarded_at, member_badges.c.revoked_at)
                .where(member_badges.c.member_id == member_id)
                .order_by(member_badges.c.badge, member_badges.c.awarded_at)),
            "draw_entries": _rows(conn, select(
                draw_entries.c.draw_id, draw_entries.c.source, draw_entries.c.entries,
                draw_entries.c.points, draw_entries.c.recorded_at)
                .where(draw_entries.c.member_id == member_id)
                .order_by(draw_entries.c.draw_id, draw_entries.c.id)),
        }
    return json.dumps(body, sort_keys=True, default=_plain)


def _rows(conn: Connection, stmt: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(stmt)]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")
