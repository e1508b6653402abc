"""Referrals: a member's referral code, who referred whom, and the reward's one-time claim
(issue 12, decision 025).

A member's code is made on first ask and never changes (``referral_codes``). A referred member
records the code once (at enrolment, by the enrolling partner, or later by the member): a
``referrals`` row. Both sides are resolved to their survivors first, so a member cannot refer
themselves through an account they merged (or merge later: :func:`referrer_of` resolves again
at the purchase). ``referrer_of`` feeds ``MemberFacts.referred_by`` only while the referral is
unrewarded; the earn whose ``ReferralReward`` campaign applied claims it with a conditional
``UPDATE ... WHERE rewarded_operation_id IS NULL`` (:func:`mark_rewarded`), under the
referred member's lock, so two first purchases reward once."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.errors import AlreadyReferred, ReferralRefused, SelfReferral
from gateway.db.tables import referral_codes, referrals
from gateway.db.uow import UnitOfWork
from gateway.members.repository import MemberRepository
from gateway.promotions.coupons import ALPHABET

CODE_LENGTH = 8  # 40 bits: a referral code is shared openly; this only stops guessing sprees


def normalise(code: str) -> str:
    return re.sub(r"[\s\-]", "", code).upper()


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def code_of(conn: Connection, member_id: str, now: datetime) -> str:
    """The member's referral code (display form), made on first ask; a merged member's is its
    survivor's."""
    member_id = MemberRepository(conn).survivor_of(member_id)
    found = conn.execute(_CODE_OF, {"member_id": member_id}).scalar_one_or_none()
    if found is None:
        made = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(referral_codes).values(
            member_id=member_id, code=made, created_at=now
        ).on_conflict_do_nothing(index_elements=["member_id"]))
        found = conn.execute(_CODE_OF, {"member_id": member_id}).scalar_one()
    return display(str(found))


def refer(conn: Connection, referred_member_id: str, code: str, now: datetime, *, via: str,
          partner_id: str | None = None, field: str = "referralCode") -> str:
    """Record that the owner of ``code`` referred ``referred_member_id``; the referrer's id.
    Refused: an unknown code (REFERRAL_REFUSED), the same person (SELF_REFERRAL, merges
    resolved), a member referred before (ALREADY_REFERRED)."""
    members = MemberRepository(conn)
    owner = conn.execute(_OWNER_OF, {"code": normalise(code)}).scalar_one_or_none()
    if owner is None:
        raise ReferralRefused("no member has this referral code", field=field)
    referrer = members.survivor_of(str(owner))
    referred = members.survivor_of(referred_member_id)
    if referrer == referred:
        raise SelfReferral("a member cannot refer themselves (merged accounts are one member)",
                           field=field)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(dialect.insert(referrals).values(
        referred_member_id=referred, referrer_member_id=referrer, recorded_at=now, via=via,
        partner_id=partner_id,
    ).on_conflict_do_nothing(index_elements=["referred_member_id"])
        .returning(referrals.c.referred_member_id)).first()
    if inserted is None:  # (RETURNING: psycopg's rowcount is -1 here on this engine)
        raise AlreadyReferred("this member was referred already", field=field)
    return referrer


def referrer_of(conn: Connection, member_id: str) -> str | None:
    """Who referred the member, while that referral is unrewarded (the referrer's survivor);
    None if the two have become one member since."""
    found = conn.execute(_UNREWARDED, {"member_id": member_id}).scalar_one_or_none()
    if found is None:
        return None
    referrer = MemberRepository(conn).survivor_of(str(found))
    return None if referrer == member_id else referrer


class ReferralRace(Exception):
    """The referral was claimed already although its member was locked: a bug (lock order)."""


def mark_rewarded(conn: Connection, member_id: str, operation_id: str, now: datetime) -> None:
    """Claim the member's referral for ``operation_id`` (exactly once)."""
    claimed = conn.execute(_CLAIM, {"member_id": member_id, "operation_id": operation_id,
                                    "now": now})
    if claimed.rowcount != 1:
        raise ReferralRace(f"the referral of {member_id} was rewarded already")


def reopen(conn: Connection, member_ids: Sequence[str], operation_id: str) -> bool:
    """A full return of the purchase that rewarded the referral (decision 035): the referral is
    unrewarded again (both sides' rewards were taken back), so the referred member's next
    qualifying purchase rewards it. ``member_ids``: the referred member as the earn named it
    and its survivor now. True if a referral was reopened."""
    return bool(conn.execute(_REOPEN, {"member_ids": list(member_ids),
                                       "operation_id": operation_id}).rowcount)


# Built once (DESIGN §11); each by its primary key or unique index.
_CODE_OF = select(referral_codes.c.code).where(  # primary key
    referral_codes.c.member_id == bindparam("member_id"))
_OWNER_OF = select(referral_codes.c.member_id).where(  # uq_referral_codes_code
    referral_codes.c.code == bindparam("code"))
_UNREWARDED = select(referrals.c.referrer_member_id).where(  # primary key
    referrals.c.referred_member_id == bindparam("member_id"),
    referrals.c.rewarded_operation_id.is_(None))
_CLAIM = (update(referrals)
          .where(referrals.c.referred_member_id == bindparam("member_id"),  # primary key
                 referrals.c.rewarded_operation_id.is_(None))
          .values(rewarded_operation_id=bindparam("operation_id"),
                  rewarded_at=bindparam("now", type_=referrals.c.rewarded_at.type)))

_REOPEN = (update(referrals)
           .where(referrals.c.referred_member_id.in_(  # primary key
               bindparam("member_ids", expanding=True)),
               referrals.c.rewarded_operation_id == bindparam("operation_id"))
           .values(rewarded_operation_id=None, rewarded_at=None))


# --- one transaction each, for the member API and enrolment ------------------------------------
def my_code(engine: Engine, member_id: str, now: datetime) -> str:
    with UnitOfWork(engine) as uow:
        code = code_of(uow.conn, member_id, now)
        uow.commit()
    return code


def record_referral(engine: Engine, member_id: str, code: str, now: datetime) -> str:
    """The member records who referred them (``via`` member); the referrer's code back."""
    with UnitOfWork(engine) as uow:
        referrer = refer(uow.conn, member_id, code, now, via="member")
        shown = code_of(uow.conn, referrer, now)
        uow.commit()
    return shown
