"""Erasure (GDPR art. 17): what is held about a member goes, the ledger stays as pseudonymous
accounting records.

In one write transaction: remaining points are forfeited to coalition breakage (like expiry) or
donated to a charity partner, as the member chose; every open link is closed (the partner's
customer id reaches nothing) and the customer ids in ``linked_accounts`` and ``link_events`` are
replaced by keyed pseudonyms; consents given are withdrawn (new events, ``via`` erasure);
credentials, portal sessions, link codes and authorization codes are deleted; the profile
(birth date, language, activation code) is cleared and the status becomes ``erased``. The card
number is kept so it is never reused. Operations, transfers and lots keep the internal member id,
which nothing outside the gateway knows, so ``verify`` and settlement see the same ledger."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from gateway.core.errors import InvalidInput, UnknownMember
from gateway.db.retry import retrying
from gateway.db.tables import (
    audit_log,
    consents,
    link_codes,
    link_events,
    linked_accounts,
    member_credentials,
    member_segments,
    member_sessions,
    members,
    notification_emails,
    notification_preferences,
    notification_tiers,
    notifications,
    oauth_authorization_codes,
    password_resets,
)
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext
from gateway.ledger.housekeeping import sweep_member
from gateway.ledger.member_ops import charity, donate_in, forfeit_in
from gateway.ledger.runner import Tx, transact
from gateway.members.identity import IdentityRepository

PSEUDONYM_SECRET = "erasure-pseudonym"
CHOICES = ("FORFEIT", "DONATE")


@dataclass(frozen=True, slots=True)
class Erased:
    member_id: str
    erased_at: datetime
    forfeited: int
    donated: int
    links_closed: int


def erase_member(ctx: LedgerContext, member_id: str, remaining: str,
                 charity_partner_id: str | None, actor: str) -> Erased:
    """Erase the member. ``remaining``: FORFEIT or DONATE (to ``charity_partner_id``). Erasing
    an erased member again answers UNKNOWN_MEMBER: there is no one left to erase."""
    if remaining not in CHOICES:
        raise InvalidInput("remainingPoints must be FORFEIT or DONATE", field="remainingPoints")
    if remaining == "DONATE":
        if not charity_partner_id:
            raise InvalidInput("DONATE needs a charityPartnerId", field="charityPartnerId")
        charity(ctx, charity_partner_id)

    def body(conn: Connection) -> Erased:
        return erase_in(ctx, Tx.on(conn, ctx.clock.now()), member_id, remaining,
                        charity_partner_id, actor)

    return retrying(lambda: transact(ctx.engine, body))


def erase_in(ctx: LedgerContext, tx: Tx, member_id: str, remaining: str,
             charity_partner_id: str | None, actor: str) -> Erased:
    conn = tx.conn
    tx.ledger.lock_member(member_id)  # before the check: a concurrent merge has committed
    status = conn.execute(select(members.c.status).where(members.c.id == member_id)
                          ).scalar_one_or_none()
    if status != "active":
        raise UnknownMember("no active coalition member to erase")
    sweep_member(tx, member_id)  # what expired is breakage already, not part of what is left
    donated = 0
    forfeited = forfeit_in(tx, member_id).points if remaining == "FORFEIT" else 0
    if remaining == "DONATE" and charity_partner_id is not None:
        wallet = tx.ledger.member_balances(member_id)[AccountKind.WALLET]
        if wallet:
            donated = donate_in(ctx, tx, member_id, charity_partner_id, wallet).points
        forfeited = forfeit_in(tx, member_id).points  # pending points cannot be donated
    closed = 0
    for partner_id, _, _, _ in tx.members.open_links(member_id):
        tx.members.close_link(partner_id, member_id, tx.now, via="erasure", actor=actor)
        closed += 1
    _pseudonymise_links(tx, member_id)
    _withdraw_consents(tx, member_id)
    # member_segments: what a refresh derived from their purchase history (decision 026).
    for table in (member_credentials, member_sessions, password_resets, link_codes,
                  oauth_authorization_codes, member_segments):
        conn.execute(delete(table).where(table.c.member_id == member_id))
    # Their notifications (decision 031): the queued emails (through the notification index),
    # the feed, the preferences and the last tier told.
    conn.execute(delete(notification_emails).where(notification_emails.c.notification_id.in_(
        select(notifications.c.id).where(notifications.c.member_id == member_id))))
    for table in (notifications, notification_preferences, notification_tiers):
        conn.execute(delete(table).where(table.c.member_id == member_id))
    conn.execute(update(members).where(members.c.id == member_id).values(
        status="erased", erased_at=tx.now, birth_date=None, language=None,
        activation_code_hash=None))
    conn.execute(insert(audit_log), {
        "at": tx.now, "actor": actor, "action": "member.erased", "subject": member_id,
        "detail": json.dumps({"forfeited": forfeited, "donated": donated,
                              "links_closed": closed}, sort_keys=True)})
    return Erased(member_id, tx.now, forfeited, donated, closed)


def _pseudonymise_links(tx: Tx, member_id: str) -> None:
    conn = tx.conn
    secret = IdentityRepository(conn).secret(PSEUDONYM_SECRET, tx.now)

    def pseudonym(partner_id: str, customer_id: str) -> str:
        if customer_id.startswith("erased_"):
            return customer_id
        digest = hmac.new(secret, f"{partner_id}\x00{customer_id}".encode(), hashlib.sha256)
        return "erased_" + digest.hexdigest()[:40]

    for partner_id, customer_id in conn.execute(
            select(linked_accounts.c.partner_id, linked_accounts.c.customer_id)
            .where(linked_accounts.c.member_id == member_id)).all():
        conn.execute(update(linked_accounts).where(
            linked_accounts.c.partner_id == partner_id,
            linked_accounts.c.customer_id == customer_id).values(
            customer_id=pseudonym(partner_id, customer_id)))
    for event_id, partner_id, customer_id in conn.execute(
            select(link_events.c.id, link_events.c.partner_id, link_events.c.customer_id)
            .where(link_events.c.member_id == member_id)).all():
        conn.execute(update(link_events).where(link_events.c.id == event_id).values(
            customer_id=pseudonym(partner_id, customer_id)))


def _withdraw_consents(tx: Tx, member_id: str) -> None:
    conn = tx.conn
    latest: dict[tuple[str, str | None], int] = {}
    for purpose, partner_id, granted in conn.execute(
            select(consents.c.purpose, consents.c.partner_id, consents.c.granted)
            .where(consents.c.member_id == member_id).order_by(consents.c.id)).all():
        latest[(str(purpose), partner_id)] = int(granted)
    for (purpose, partner_id), granted in sorted(latest.items(), key=str):
        if granted:
            conn.execute(insert(consents), {
                "member_id": member_id, "partner_id": partner_id, "purpose": purpose,
                "granted": 0, "at": tx.now, "via": "erasure"})
