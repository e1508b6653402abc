"""The member's own view of their data (``viewer``, DESIGN §6): linked brands and consents, and
the member's own changes to links and consents. The wallet and history across every brand are
read by the ledger, beside the rules that write them (``gateway.ledger.balances``, ``history``).

Every read starts from the member id (the token's), through an index whose leading column is
that id (lots, operations, links, consents, members.merged_into), and returns a bounded page, so
its cost depends on this member's data only, never on the number of members or transfers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput, NotFound, UnknownMember
from gateway.db.tables import consents, linked_accounts, members, partners
from gateway.db.uow import UnitOfWork
from gateway.members.repository import MemberRepository

MAX_CONSENT_EVENTS = 500
# ``coalition_marketing`` (coalition-wide, no partner): the coalition's own marketing messages
# to the member, such as birthday greetings and offers in the notification feed and by email
# (docs/decisions/031-notifications.md); a partner's offer also needs that partner's
# ``marketing`` consent.
PURPOSES = ("marketing", "purchase_history", "coalition_marketing")
COALITION_WIDE = ("purchase_history", "coalition_marketing")


@dataclass(frozen=True, slots=True)
class LinkedBrand:
    partner_id: str
    partner_name: str
    linked_at: datetime
    via: str | None


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    partner_id: str | None
    partner_name: str | None
    granted: bool
    at: datetime
    via: str


def charities(engine: Engine) -> list[tuple[str, str]]:
    """(id, name) of every charity partner, by name: where a member may donate."""
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(select(partners.c.id, partners.c.name)
                                .where(partners.c.kind == "charity")
                                .order_by(partners.c.name, partners.c.id)).all()
    return [(str(i), str(n)) for i, n in rows]


def active(conn: Connection, member_id: str) -> str:
    """The member's card number; UNKNOWN_MEMBER unless the member is active."""
    row = conn.execute(select(members.c.status, members.c.card_number)
                       .where(members.c.id == member_id)).first()
    if row is None or row.status != "active":
        raise UnknownMember("this member account is not active (merged or erased)")
    return str(row.card_number or "")


def card_number(engine: Engine, member_id: str) -> str:
    with UnitOfWork(engine, write=False) as uow:
        return active(uow.conn, member_id)


def linked_brands(engine: Engine, member_id: str) -> list[LinkedBrand]:
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(
            select(linked_accounts.c.partner_id, partners.c.name, linked_accounts.c.linked_at,
                   linked_accounts.c.consent_via)
            .join(partners, partners.c.id == linked_accounts.c.partner_id)
            .where(linked_accounts.c.member_id == member_id,
                   linked_accounts.c.closed_at.is_(None))
            .order_by(linked_accounts.c.partner_id)).all()
    return [LinkedBrand(str(p), str(n), at, via) for p, n, at, via in rows]


def consent_states(engine: Engine, member_id: str) -> list[ConsentState]:
    """The latest event of each (purpose, partner): given or withdrawn, when and how."""
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(
            select(consents.c.purpose, consents.c.partner_id, partners.c.name,
                   consents.c.granted, consents.c.at, consents.c.via)
            .outerjoin(partners, partners.c.id == consents.c.partner_id)
            .where(consents.c.member_id == member_id)
            .order_by(consents.c.id.desc()).limit(MAX_CONSENT_EVENTS)).all()
    latest: dict[tuple[str, str | None], ConsentState] = {}
    for purpose, partner_id, name, granted, at, via in rows:
        latest.setdefault((purpose, partner_id), ConsentState(
            str(purpose), partner_id, name, bool(granted), at, str(via)))
    return sorted(latest.values(), key=lambda c: (c.purpose, c.partner_id or ""))


def set_consent(engine: Engine, clock: Clock, member_id: str, purpose: str,
                partner_id: str | None, granted: bool, via: str) -> ConsentState:
    """Append a consent event. ``marketing`` is per partner; ``purchase_history`` and
    ``coalition_marketing`` are coalition-wide (no partner)."""
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}", field="purpose")
    if purpose == "marketing" and not partner_id:
        raise InvalidInput("marketing consent is given per partner: name one",
                           field="partnerId")
    if purpose in COALITION_WIDE and partner_id:
        raise InvalidInput(f"{purpose} consent is coalition-wide: no partner",
                           field="partnerId")
    with UnitOfWork(engine) as uow:
        conn, now = uow.conn, clock.now()
        active(conn, member_id)
        name = None
        if partner_id is not None:
            name = conn.execute(select(partners.c.name).where(partners.c.id == partner_id)
                                ).scalar_one_or_none()
            if name is None:
                raise NotFound(f"no partner {partner_id!r}", field="partnerId")
        conn.execute(insert(consents), {
            "member_id": member_id, "partner_id": partner_id, "purpose": purpose,
            "granted": 1 if granted else 0, "at": now, "via": via})
        uow.commit()
    return ConsentState(purpose, partner_id, name, granted, now, via)


def unlink_brand(engine: Engine, clock: Clock, member_id: str, partner_id: str) -> str:
    """Close the member's link at the partner (points stay); the partner id. NOT_FOUND when
    there is no open link there."""
    with UnitOfWork(engine) as uow:
        active(uow.conn, member_id)
        closed = MemberRepository(uow.conn).close_link(
            partner_id, member_id, clock.now(), via="member", actor=f"member:{member_id}")
        if closed is None:
            raise NotFound(f"no open link at partner {partner_id!r}", field="partnerId")
        uow.commit()
    return partner_id
