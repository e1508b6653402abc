"""The hold planners: capture and void, and the hold's own state checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.core.errors import CaptureExceedsHold, HoldAlreadySettled, HoldExpired
from gateway.core.money import Money
from gateway.ledger.chart import AccountKind
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import HoldCaptured, HoldVoided, OperationRecord
from gateway.ledger.planners.lots import restore_takes
from gateway.ledger.planners.state import HoldState, MemberState, Move, Plan, Posting
from gateway.ledger.repository import Account
from partners.config import RuleVersion
from partners.rules import quote_burn


@dataclass(frozen=True, slots=True)
class HoldInput:
    partner_id: str
    currency: str
    key: str
    fingerprint: str
    now: datetime
    operation_id: str
    points: int | None = None  # capture: None captures everything held


def open_hold(hold: HoldState, now: datetime, *, capture: bool) -> None:
    """The hold's state, in result-code order: settled (captured, voided) first, then expired.
    Void has no HOLD_EXPIRED answer: a hold that housekeeping expired is settled for it."""
    if hold.status == "expired" and capture:
        raise HoldExpired(f"hold {hold.id} expired at {hold.expires_at.isoformat()}",
                          field="holdId")
    if hold.status != "authorised":
        raise HoldAlreadySettled(f"hold {hold.id} is {hold.status} already", field="holdId")
    if capture and hold.expires_at <= now:
        raise HoldExpired(f"hold {hold.id} expired at {hold.expires_at.isoformat()}",
                          field="holdId")


def plan_capture(state: MemberState, hold: HoldState, rule: RuleVersion, redeemed: Account,
                 request: HoldInput) -> Plan[HoldCaptured]:
    """Capture all or part of a hold: held -> redeemed; the rest goes back to the wallet and
    into the lots it came from."""
    open_hold(hold, request.now, capture=True)
    points = hold.points if request.points is None else request.points
    if points > hold.points:
        raise CaptureExceedsHold(requested=points, held=hold.points)
    quote = quote_burn(rule, points=points, basket_amount_minor=hold.basket_amount_minor)
    released = hold.points - points
    result = HoldCaptured(request.operation_id, hold.id, points, released,
                          Money(quote.value_minor, request.currency),
                          state.available + released)
    record = OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind="capture", points=-points, result=result, key=request.key,
        fingerprint=request.fingerprint, rule=rule, hold_id=hold.id,
        parent_id=hold.operation_id, purchase_id=hold.purchase_id,
        amount_minor=hold.basket_amount_minor, currency=request.currency,
    )
    moves = [Move(state.account(AccountKind.HELD), redeemed, points)]
    restores: tuple[LotTake, ...] = ()
    if released:
        moves.append(Move(state.account(AccountKind.HELD), state.account(AccountKind.WALLET),
                          released))
        restores = restore_takes(hold.takes, released)
    return Plan(result, (Posting(record, tuple(moves), lot_moves=restores,
                                 settle_hold=(hold.id, "captured", points)),))


def plan_void(state: MemberState, hold: HoldState, request: HoldInput) -> Plan[HoldVoided]:
    """Release a hold in full: held -> wallet, the points back into their lots."""
    open_hold(hold, request.now, capture=False)
    result = HoldVoided(request.operation_id, hold.id, hold.points,
                        state.available + hold.points)
    record = OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind="void", points=hold.points, result=result, key=request.key,
        fingerprint=request.fingerprint, hold_id=hold.id, parent_id=hold.operation_id,
    )
    move = Move(state.account(AccountKind.HELD), state.account(AccountKind.WALLET), hold.points)
    return Plan(result, (Posting(record, (move,), lot_moves=restore_takes(hold.takes,
                                                                          hold.points),
                                 settle_hold=(hold.id, "voided", 0)),))
