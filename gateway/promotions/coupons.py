"""Coupons at the till: codes a partner issued (``gateway.promotions.coupon_issue``) that
unlock one of its campaigns with a ``CouponPresented`` condition (issue 12, decision 025).

A code is kept only as an HMAC of its normalised form, keyed with a server secret, unique per
partner: a copy of the database does not give the codes away. ``uses`` is the one mutable
column, moved in the transaction that redeems (an earn whose coupon campaign applied) or
restores (the full return of that earn) it; ``coupon_redemptions`` is the append-only record
it sums (+1 a redemption, -1 a restore). Exactly once under races: :func:`present` reads the
presented coupons ``FOR UPDATE`` (after the member, in coupon id order), and :func:`consume`
is a conditional ``UPDATE ... WHERE uses < max_uses`` whose row count must be 1.

Presenting a code that cannot be used (unknown, expired, used up, someone else's, the
member's limit reached, its campaign not in force or not applying) never refuses the earn: the
purchase happened and its base points are due. Each code's outcome is a line of the earn's
explanation instead (``CouponCheck.explanation``), which the till shows."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, select, update

from gateway.db.tables import coupon_redemptions, coupons, server_secrets
from gateway.members.identity import IdentityRepository
from gateway.members.repository import MAX_MERGED, MemberRepository

# Human-friendly: no 0/O, no 1/I (read aloud and typed at a till). 32 symbols: 5 bits each.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
GENERATED_LENGTH = 12  # 60 bits from ``secrets``: shown as XXXX-XXXX-XXXX
CODE_SECRET = "coupon-codes"



class CouponStatus(enum.StrEnum):
    REDEEMED = "redeemed"  # its campaign applied: one use taken
    VALID = "valid"  # usable (before the campaigns are evaluated)
    NOT_APPLIED = "not_applied"  # usable, but its campaign did not apply to this purchase
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    USED_UP = "used_up"
    NOT_YOURS = "not_yours"  # a personal coupon of another member
    MEMBER_LIMIT = "member_limit"
    DUPLICATE = "duplicate"  # a second code for the same campaign in one purchase


@dataclass(frozen=True, slots=True)
class CouponCheck:
    code: str  # as presented, normalised
    status: CouponStatus
    coupon_id: int | None = None
    campaign_id: str | None = None

    @property
    def explanation(self) -> str:
        campaign = f" ({self.campaign_id})" if self.campaign_id else ""
        return f"coupon {self.code}{campaign}: {_SAYS[self.status]}"


_SAYS = {
    CouponStatus.REDEEMED: "redeemed",
    CouponStatus.VALID: "valid",
    CouponStatus.NOT_APPLIED: "not used, its campaign does not apply to this purchase "
                              "(the coupon stays usable)",
    CouponStatus.NOT_FOUND: "not used, no such coupon here",
    CouponStatus.EXPIRED: "not used, expired",
    CouponStatus.USED_UP: "not used, already used up",
    CouponStatus.NOT_YOURS: "not used, a personal coupon of another member",
    CouponStatus.MEMBER_LIMIT: "not used, this member's limit for it is reached",
    CouponStatus.DUPLICATE: "not used, another coupon for the same campaign was presented",
}


@dataclass(frozen=True, slots=True)
class Presented:
    """The outcome of each presented code, in the order presented."""

    checks: tuple[CouponCheck, ...] = ()

    @property
    def campaigns(self) -> frozenset[str]:
        """``MemberFacts.coupons``: the campaigns with a valid coupon presented."""
        return frozenset(c.campaign_id for c in self.checks
                         if c.status is CouponStatus.VALID and c.campaign_id is not None)

    def settled(self, applied: Collection[str]) -> Presented:
        """Valid coupons of the campaigns that applied become REDEEMED, the rest NOT_APPLIED."""
        return Presented(tuple(
            replace(c, status=CouponStatus.REDEEMED if c.campaign_id in applied
                    else CouponStatus.NOT_APPLIED)
            if c.status is CouponStatus.VALID else c for c in self.checks))

    @property
    def explanation(self) -> tuple[str, ...]:
        return tuple(c.explanation for c in self.checks)


NOTHING_PRESENTED = Presented()


# --- codes -------------------------------------------------------------------------------------
def generate_codes(count: int) -> list[str]:
    """``count`` distinct codes of ``GENERATED_LENGTH`` symbols from ``secrets`` (60 bits each)."""
    found: dict[str, None] = {}
    while len(found) < count:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))
        found["-".join(raw[i:i + 4] for i in range(0, GENERATED_LENGTH, 4))] = None
    return list(found)


def normalise(code: str) -> str:
    """Upper case, without spaces and hyphens: ``k7qm-2xhp 9rtd`` is ``K7QM2XHP9RTD``."""
    return re.sub(r"[\s\-]", "", code).upper()


def code_key(conn: Connection, now: datetime) -> bytes:
    """The HMAC key of coupon codes (a server secret, made on first use in this transaction)."""
    found = conn.execute(_SECRET).scalar_one_or_none()
    if found is not None:
        return base64.b64decode(found)
    return IdentityRepository(conn).secret(CODE_SECRET, now)


_SECRET = select(server_secrets.c.value).where(server_secrets.c.name == CODE_SECRET)


def code_hash(key: bytes, partner_id: str, normalised: str) -> str:
    return hmac.new(key, f"{partner_id}\x00{normalised}".encode(), hashlib.sha256).hexdigest()


# --- at the till -------------------------------------------------------------------------------
_LOCKED = (
    select(coupons.c.id, coupons.c.code_hash, coupons.c.campaign_id, coupons.c.max_uses,
           coupons.c.uses, coupons.c.per_member_limit, coupons.c.expires_at,
           coupons.c.member_id)
    .where(coupons.c.partner_id == bindparam("partner_id"),  # uq_coupons_partner_code
           coupons.c.code_hash.in_(bindparam("hashes", expanding=True)))
    .order_by(coupons.c.id)
    .with_for_update())  # nothing on SQLite: BEGIN IMMEDIATE serialised the writers already
# The member's uses, with those of the accounts merged into it (one member: their uses are its
# uses): ix_coupon_redemptions_member, one range per member id, at most MAX_MERGED of them.
_MEMBER_USES = (
    select(coupon_redemptions.c.coupon_id, func.sum(coupon_redemptions.c.uses))
    .where(coupon_redemptions.c.member_id.in_(bindparam("members", expanding=True)),
           coupon_redemptions.c.coupon_id.in_(bindparam("ids", expanding=True)))
    .group_by(coupon_redemptions.c.coupon_id))
_TAKE = (
    update(coupons)
    .where(coupons.c.id == bindparam("coupon_id"), coupons.c.uses < coupons.c.max_uses)
    .values(uses=coupons.c.uses + 1))
_GIVE_BACK = (
    update(coupons)
    .where(coupons.c.id == bindparam("coupon_id"), coupons.c.uses > 0)
    .values(uses=coupons.c.uses - 1))
_REDEMPTIONS_OF = (
    select(coupon_redemptions.c.coupon_id, coupon_redemptions.c.member_id)
    .where(coupon_redemptions.c.operation_id == bindparam("operation_id"),  # ix_..._operation
           coupon_redemptions.c.uses > 0)
    .order_by(coupon_redemptions.c.coupon_id))
_RECORD = insert(coupon_redemptions)


def present(conn: Connection, partner_id: str, member_id: str, codes: Sequence[str],
            now: datetime) -> Presented:
    """Which presented codes the member may use now (``now``: when the purchase happened),
    their rows locked after the member's, in coupon id order. At most one coupon per campaign
    counts (the first presented); the rest say why not."""
    if not codes:
        return NOTHING_PRESENTED
    key = code_key(conn, now)
    shown = [normalise(c) for c in codes]
    hashes = [code_hash(key, partner_id, n) for n in shown]
    rows = {r.code_hash: r for r in conn.execute(
        _LOCKED, {"partner_id": partner_id, "hashes": sorted(set(hashes))}).all()}
    limited = sorted({r.id for r in rows.values() if r.per_member_limit is not None})
    used_by_member = {int(cid): int(n) for cid, n in conn.execute(_MEMBER_USES, {
        "members": MemberRepository(conn).with_absorbed(member_id, MAX_MERGED),
        "ids": limited}).all()} if limited else {}
    checks: list[CouponCheck] = []
    seen: set[str] = set()
    for text, digest in zip(shown, hashes, strict=True):
        row = rows.get(digest)
        if row is None:
            checks.append(CouponCheck(text, CouponStatus.NOT_FOUND))
            continue
        status = _status(conn, row, member_id, used_by_member.get(row.id, 0), now)
        if status is CouponStatus.VALID and row.campaign_id in seen:
            status = CouponStatus.DUPLICATE
        if status is CouponStatus.VALID:
            seen.add(row.campaign_id)
        checks.append(CouponCheck(text, status, int(row.id), str(row.campaign_id)))
    return Presented(tuple(checks))


def _status(conn: Connection, row: object, member_id: str, member_uses: int,
            now: datetime) -> CouponStatus:
    expires_at = getattr(row, "expires_at")  # noqa: B009 (a Row's typed attribute)
    if expires_at is not None and expires_at <= now:
        return CouponStatus.EXPIRED
    if getattr(row, "uses") >= getattr(row, "max_uses"):  # noqa: B009
        return CouponStatus.USED_UP
    owner = getattr(row, "member_id")  # noqa: B009
    # A personal coupon of a member since merged into this one is this member's.
    if owner is not None and owner != member_id and \
            MemberRepository(conn).survivor_of(str(owner)) != member_id:
        return CouponStatus.NOT_YOURS
    limit = getattr(row, "per_member_limit")  # noqa: B009
    if limit is not None and member_uses >= limit:
        return CouponStatus.MEMBER_LIMIT
    return CouponStatus.VALID


class CouponRace(Exception):
    """A presented coupon's conditional UPDATE found it used up although its row was locked:
    a bug (the lock order was broken); the transaction is rolled back whole."""


def consume(conn: Connection, presented: Presented, member_id: str, operation_id: str,
            now: datetime) -> None:
    """Take one use of each REDEEMED coupon (``Presented.settled``) and record it."""
    # A statement per coupon (at most a few per purchase): the prebuilt statements run through
    # the raw drivers, which take one parameter set each (gateway.db.fast, pgfast).
    for check in presented.checks:
        if check.status is not CouponStatus.REDEEMED:
            continue
        if conn.execute(_TAKE, {"coupon_id": check.coupon_id}).rowcount != 1:
            raise CouponRace(f"coupon {check.coupon_id} was used up under its lock")
        conn.execute(_RECORD, {"coupon_id": check.coupon_id, "member_id": member_id,
                               "operation_id": operation_id, "uses": 1, "recorded_at": now})


def restore(conn: Connection, earn_operation_id: str, return_operation_id: str,
            now: datetime) -> int:
    """A full return: give back each use its earn took (a new -1 row, never an update of the
    redemption). Returns how many coupons were restored."""
    taken = conn.execute(_REDEMPTIONS_OF, {"operation_id": earn_operation_id}).all()
    for coupon_id, member_id in taken:
        conn.execute(_GIVE_BACK, {"coupon_id": coupon_id})
        conn.execute(_RECORD, {"coupon_id": coupon_id, "member_id": member_id,
                               "operation_id": return_operation_id, "uses": -1,
                               "recorded_at": now})
    return len(taken)
