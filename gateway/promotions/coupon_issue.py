"""Issuing coupons: generated codes (shown once) and imported ones, under a partner's own
coupon campaign, and a code's status for its partner (decision 025). The till's side
(presenting, using, restoring) is ``gateway.promotions.coupons``; the partner API
(``issueCoupons``, ``importCoupons``, ``coupon``) and ``gateway coupons`` call the
one-transaction functions at the end."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from gateway.core.errors import InvalidInput, NotFound, UnknownMember
from gateway.db.tables import campaign_versions, campaigns, coupons
from gateway.db.uow import UnitOfWork
from gateway.members.repository import MemberRepository
from gateway.outbox import emit
from gateway.promotions import codec
from gateway.promotions.coupons import (
    CouponStatus,
    code_hash,
    code_key,
    generate_codes,
    normalise,
)
from gateway.promotions.model import Campaign, CouponPresented
from gateway.promotions.parsing import qualified_id

MAX_ISSUE = 10_000  # codes per issueCoupons / importCoupons call
MAX_USES = 1_000_000
_IMPORTED = re.compile(r"[A-Z0-9]{4,32}")


@dataclass(frozen=True, slots=True)
class CouponTerms:
    """What every code of one issue or import shares."""

    campaign_id: str
    max_uses: int = 1
    per_member_limit: int | None = None
    expires_at: datetime | None = None
    member_id: str | None = None  # a personal coupon: only this member may present it


# --- issuing -----------------------------------------------------------------------------------
def check_terms(conn: Connection, partner_id: str, terms: CouponTerms, now: datetime) -> str:
    """The stored id of the partner's own coupon campaign (``NotFound`` for another's, like a
    missing one), after the terms' own checks, each naming its field."""
    if not 1 <= terms.max_uses <= MAX_USES:
        raise InvalidInput(f"maxUses must be between 1 and {MAX_USES}", field="maxUses")
    if terms.per_member_limit is not None and not 1 <= terms.per_member_limit <= terms.max_uses:
        raise InvalidInput("perMemberLimit must be between 1 and maxUses",
                           field="perMemberLimit")
    if terms.expires_at is not None:
        if terms.expires_at.tzinfo is None:
            raise InvalidInput("expiresAt needs a time zone offset", field="expiresAt")
        if terms.expires_at <= now:
            raise InvalidInput("expiresAt must be in the future", field="expiresAt")
    campaign_id = qualified_id(partner_id, terms.campaign_id)
    campaign = latest_campaign(conn, partner_id, campaign_id)
    if not any(isinstance(k, CouponPresented) for k in campaign.audience + campaign.conditions):
        raise InvalidInput(f"campaign {campaign_id!r} has no couponPresented condition: a coupon "
                           "would unlock nothing", field="campaignId")
    return campaign_id


def latest_campaign(conn: Connection, partner_id: str, campaign_id: str) -> Campaign:
    owner = conn.execute(select(campaigns.c.owner).where(campaigns.c.id == campaign_id)
                         ).scalar_one_or_none()
    if owner != partner_id:
        raise NotFound("no campaign of yours has this id", field="campaignId")
    definition = conn.execute(
        select(campaign_versions.c.definition)
        .where(campaign_versions.c.campaign_id == campaign_id)
        .order_by(campaign_versions.c.version.desc()).limit(1)).scalar_one()
    return codec.loads(definition)


def add_codes(conn: Connection, partner_id: str, terms: CouponTerms, codes: Sequence[str], *,
              now: datetime, actor: str, field: str = "codes") -> int:
    """Store ``codes`` (display forms) under ``terms`` (checked by :func:`check_terms`); a code
    already used by the partner, or twice in the list, is refused naming its index."""
    if not 1 <= len(codes) <= MAX_ISSUE:
        raise InvalidInput(f"between 1 and {MAX_ISSUE} codes at a time", field=field)
    key = code_key(conn, now)
    hashes: dict[str, int] = {}
    for i, code in enumerate(codes):
        normalised = normalise(code)
        if not _IMPORTED.fullmatch(normalised):
            raise InvalidInput("a code is 4 to 32 letters and digits (spaces and hyphens are "
                               "ignored)", field=f"{field}[{i}]")
        digest = code_hash(key, partner_id, normalised)
        if digest in hashes:
            raise InvalidInput(f"the same code as {field}[{hashes[digest]}]",
                               field=f"{field}[{i}]")
        hashes[digest] = i
    taken = conn.execute(select(coupons.c.code_hash).where(  # uq_coupons_partner_code
        coupons.c.partner_id == partner_id,
        coupons.c.code_hash.in_(list(hashes)))).scalars().first()
    if taken is not None:
        raise InvalidInput("already a coupon code of yours", field=f"{field}[{hashes[taken]}]")
    conn.execute(insert(coupons), [
        {"partner_id": partner_id, "campaign_id": terms.campaign_id, "code_hash": digest,
         "code_hint": normalise(codes[i])[-4:], "max_uses": terms.max_uses,
         "per_member_limit": terms.per_member_limit, "expires_at": terms.expires_at,
         "member_id": terms.member_id, "uses": 0, "created_at": now, "created_by": actor}
        for digest, i in hashes.items()])
    if terms.member_id is not None:  # a personal offer: the member hears of it (decision 031)
        emit(conn, "coupon.assigned", partner_id=partner_id, member_id=terms.member_id, at=now,
             data={"campaign_id": terms.campaign_id, "codes": len(hashes),
                   "expires_at": None if terms.expires_at is None
                   else terms.expires_at.isoformat()})
    return len(hashes)


@dataclass(frozen=True, slots=True)
class CouponView:
    """A coupon as its partner sees it (``gateway coupons show``, the ``coupon`` query)."""

    code_hint: str
    campaign_id: str
    max_uses: int
    uses: int
    per_member_limit: int | None
    expires_at: datetime | None
    personal: bool
    created_at: datetime

    def status(self, now: datetime) -> CouponStatus:
        if self.expires_at is not None and self.expires_at <= now:
            return CouponStatus.EXPIRED
        return CouponStatus.USED_UP if self.uses >= self.max_uses else CouponStatus.VALID


def lookup(conn: Connection, partner_id: str, code: str, now: datetime) -> CouponView:
    """One of the partner's coupons by its code (another partner's: ``NotFound``)."""
    digest = code_hash(code_key(conn, now), partner_id, normalise(code))
    row = conn.execute(select(coupons).where(  # uq_coupons_partner_code
        coupons.c.partner_id == partner_id, coupons.c.code_hash == digest)).one_or_none()
    if row is None:
        raise NotFound("no coupon of yours has this code", field="code")
    return CouponView(row.code_hint, row.campaign_id, row.max_uses, row.uses,
                      row.per_member_limit, row.expires_at, row.member_id is not None,
                      row.created_at)


def issue(conn: Connection, partner_id: str, terms: CouponTerms, count: int, *, now: datetime,
          actor: str) -> list[str]:
    """``count`` new generated codes under ``terms``: the only time they are shown."""
    if not 1 <= count <= MAX_ISSUE:
        raise InvalidInput(f"count must be between 1 and {MAX_ISSUE}", field="count")
    campaign_id = check_terms(conn, partner_id, terms, now)
    codes = generate_codes(count)
    add_codes(conn, partner_id, replace(terms, campaign_id=campaign_id), codes, now=now,
              actor=actor)
    return codes


def import_codes(conn: Connection, partner_id: str, terms: CouponTerms, codes: Iterable[str], *,
                 now: datetime, actor: str) -> int:
    """The partner's own codes (printed on flyers, say) under ``terms``."""
    campaign_id = check_terms(conn, partner_id, terms, now)
    return add_codes(conn, partner_id, replace(terms, campaign_id=campaign_id), list(codes),
                     now=now, actor=actor)


# --- one transaction each, for the partner API and the CLI -------------------------------------
def personal_member(conn: Connection, partner_id: str, customer_id: str | None) -> str | None:
    """The member a personal coupon is for: the partner's own linked customer."""
    if customer_id is None:
        return None
    found = MemberRepository(conn).member_for_customer(partner_id, customer_id)
    if found is None:
        raise UnknownMember("no customer with this id is linked at your shop",
                            field="customerId")
    return found


@dataclass(frozen=True, slots=True)
class Issued:
    campaign_id: str  # the stored (qualified) id
    codes: tuple[str, ...] = ()  # generated codes: shown once
    count: int = 0


def issue_coupons(engine: Engine, partner_id: str, terms: CouponTerms, count: int, *,
                  customer_id: str | None, now: datetime, actor: str) -> Issued:
    with UnitOfWork(engine) as uow:
        member = personal_member(uow.conn, partner_id, customer_id)
        codes = issue(uow.conn, partner_id, replace(terms, member_id=member), count, now=now,
                      actor=actor)
        uow.commit()
    return Issued(qualified_id(partner_id, terms.campaign_id), tuple(codes), len(codes))


def import_coupons(engine: Engine, partner_id: str, terms: CouponTerms, codes: Sequence[str], *,
                   customer_id: str | None, now: datetime, actor: str) -> Issued:
    with UnitOfWork(engine) as uow:
        member = personal_member(uow.conn, partner_id, customer_id)
        added = import_codes(uow.conn, partner_id, replace(terms, member_id=member), codes,
                             now=now, actor=actor)
        uow.commit()
    return Issued(qualified_id(partner_id, terms.campaign_id), count=added)


def show_coupon(engine: Engine, partner_id: str, code: str, now: datetime) -> CouponView:
    # A write unit of work: the code key is made on first use.
    with UnitOfWork(engine) as uow:
        found = lookup(uow.conn, partner_id, code, now)
        uow.commit()
    return found
