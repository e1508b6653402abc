"""A completion's bonus, and its reversal, on the ledger: the same shape as the welcome bonus and
the referrer's reward (decision 020), so settlement prices and charges it with no change.

The bonus is one ``bonus`` operation at the partner of the purchase that completed the window,
rated with that earn's rule version and child of it (settlement prices it at that version and
the return of it at the same), moving the points from the owner's funding account
(``partner:<owner>:promotions``, or ``coalition:bonus``) to the member's wallet, with one lot
(origin: that partner, the rule's expiry), a ``promotion_awards`` row naming the challenge
(campaign id ``challenge:<id>``) and the funder's charge (``gateway.promotions.funding``).
Its idempotency key is derived from (challenge, member, window, completion number).

The reversal (decision 032's rule) is a new ``return`` operation, child of the bonus: it takes
back what the wallet holds of the bonus (the bonus's own lot first), gives it to the funder's
account, appends the negative award row and releases the funding. What the member has spent
already is not recovered (no debt is made); the result says how much. Nothing is updated or
deleted in the ledger."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from gateway.challenges.model import COALITION, Challenge
from gateway.core.errors import FundingLimitReached
from gateway.db.tables import operations, rule_versions
from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.housekeeping import sweep_member
from gateway.ledger.load import member_state, spendable_lots
from gateway.ledger.lot_repository import LotRepository, LotTake
from gateway.ledger.model import AppliedPromotion, BonusPosted, OperationRecord
from gateway.ledger.planners import Move, NewLot, Posting, take_lots
from gateway.ledger.repository import Account
from gateway.ledger.runner import Tx, operation_id
from gateway.promotions import funding
from gateway.promotions.repository import AwardRow
from partners.config import RuleVersion
from partners.loader import rule_version_from_dict

_EARN = select(operations.c.partner_id, operations.c.rule_partner_id, operations.c.rule_version,
               operations.c.channel).where(operations.c.id == bindparam("id"))  # primary key
_RULE = select(rule_versions.c.body).where(  # primary key
    rule_versions.c.partner_id == bindparam("partner_id"),
    rule_versions.c.version == bindparam("version"))
_OPERATION = select(operations.c.partner_id, operations.c.points).where(
    operations.c.id == bindparam("id"))  # primary key


@dataclass(frozen=True, slots=True)
class BonusReversed:
    """The reversal's answer (stored with its operation)."""

    operation_id: str
    bonus_operation_id: str
    challenge_id: str
    points_reversed: int
    points_unrecovered: int
    recorded_at: datetime


def key_of(prefix: str, challenge: Challenge, member_id: str, window_key: str,
           completion: int) -> tuple[str, str]:
    """The operation's idempotency key under its partner, and the key's fingerprint."""
    key = f"{prefix}:{challenge.id}:{member_id}:{window_key}:{completion}"
    return key, hashlib.sha256(key.encode()).hexdigest()


def funder_account(tx: Tx, funder: str) -> Account:
    if funder == COALITION:
        return tx.ledger.coalition_account(AccountKind.BONUS)
    return tx.ledger.partner_account(funder, AccountKind.PROMOTIONS)


def _rule(tx: Tx, partner_id: str, version: int) -> RuleVersion:
    body = tx.conn.execute(_RULE, {"partner_id": partner_id, "version": version}).scalar_one()
    return rule_version_from_dict(json.loads(body))


def post_bonus(tx: Tx, challenge: Challenge, member_id: str, window_key: str, completion: int,
               earn_operation_id: str) -> str | None:
    """Pay ``challenge``'s bonus for this completion; the bonus operation's id, or None when
    there is nothing to pay or the funder's funding refuses it (the completion stands, the
    badge is given, no points: docs/challenges.md)."""
    points = challenge.bonus_points
    if points <= 0:
        return None
    earn = tx.conn.execute(_EARN, {"id": earn_operation_id}).one()
    rule = _rule(tx, str(earn.rule_partner_id), int(earn.rule_version))
    try:
        funding.charge(tx.conn, challenge.funder, points, tx.now)
    except FundingLimitReached:
        return None
    op_id = operation_id()
    key, fingerprint = key_of("challenge", challenge, member_id, window_key, completion)
    applied = AppliedPromotion(challenge.campaign_id, challenge.version, challenge.funder, points,
                               f"challenge {challenge.name!r} completed: +{points} points")
    record = OperationRecord(
        id=op_id, partner_id=str(earn.partner_id), member_id=member_id, kind="bonus",
        points=points, result=BonusPosted(op_id, points, (applied,), tx.now), key=key,
        fingerprint=fingerprint, rule=rule, parent_id=earn_operation_id, channel=earn.channel)
    wallet = member_state(tx, member_id).account(AccountKind.WALLET)
    expiry_days = rule.earn.expiry_days if rule.earn else 365
    lot = NewLot(str(earn.partner_id), points, tx.now, tx.now + timedelta(days=expiry_days),
                 tx.now)
    award = AwardRow(challenge.campaign_id, challenge.version, challenge.funder, member_id,
                     points, 1)
    apply(tx, (Posting(record, (Move(funder_account(tx, challenge.funder), wallet, points),),
                       new_lots=(lot,), awards=(award,)),))
    return op_id


def reverse_bonus(tx: Tx, challenge: Challenge, member_id: str, window_key: str,
                  completion: int, bonus_operation_id: str) -> BonusReversed:
    """Take back the bonus of this completion: what the wallet holds of it, its own lot
    first; the rest is unrecovered (said in the answer), never made into debt."""
    bonus = tx.conn.execute(_OPERATION, {"id": bonus_operation_id}).one()
    points = int(bonus.points)
    sweep_member(tx, member_id)
    state = member_state(tx, member_id)
    taken = max(0, min(points, state.available))
    op_id = operation_id()
    key, fingerprint = key_of("challenge-undo", challenge, member_id, window_key, completion)
    result = BonusReversed(op_id, bonus_operation_id, challenge.id, taken, points - taken, tx.now)
    record = OperationRecord(
        id=op_id, partner_id=str(bonus.partner_id), member_id=member_id, kind="return",
        points=-taken, result=result, key=key, fingerprint=fingerprint,
        parent_id=bonus_operation_id)
    moves: tuple[Move, ...] = ()
    takes: tuple[LotTake, ...] = ()
    if taken:
        own, _ = LotRepository(tx.conn).earn_lots(bonus_operation_id)
        takes = take_lots(spendable_lots(tx, member_id), taken, tx.now, prefer=own)
        moves = (Move(state.account(AccountKind.WALLET), funder_account(tx, challenge.funder),
                      taken),)
    award = AwardRow(challenge.campaign_id, challenge.version, challenge.funder, member_id,
                     -taken, -1)
    apply(tx, (Posting(record, moves, lot_moves=takes, awards=(award,)),))
    funding.release(tx.conn, challenge.funder, taken, tx.now)
    return result
