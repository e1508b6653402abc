"""The spend planners: redeem and authorise (a hold), refused in result-code order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.core.errors import InsufficientPoints
from gateway.core.money import Money
from gateway.ledger.chart import AccountKind
from gateway.ledger.model import AppliedPromotion, HoldPlaced, OperationRecord, Redeemed
from gateway.ledger.planners.lots import take_lots
from gateway.ledger.planners.state import MemberState, Move, NewHold, OpenLot, Plan, Posting
from gateway.ledger.repository import Account
from partners.config import RuleVersion
from partners.rules import quote_burn


@dataclass(frozen=True, slots=True)
class SpendInput:
    partner_id: str
    currency: str
    points: int
    basket_amount_minor: int
    key: str
    fingerprint: str
    purchase_id: str | None
    channel: str | None
    now: datetime
    operation_id: str


def plan_spend(state: MemberState, lots: Sequence[OpenLot], rule: RuleVersion,
               redeemed: Account, request: SpendInput,
               promotions: tuple[AppliedPromotion, ...] = (),
               explanation: tuple[str, ...] = ()) -> Plan[Redeemed]:
    """Redeem now: the rule's limits (REDEMPTION_NOT_ACCEPTED, min points, CAP_EXCEEDED), then
    the balance (INSUFFICIENT_POINTS); wallet -> the partner's redeemed account, lots consumed
    soonest expiry first. ``rule`` carries a PointsDiscount's better point value when one
    applies (``promotions`` names it); the value is FLOOR, as always."""
    value = _check_spend(state, rule, request)
    result = Redeemed(request.operation_id, request.points, value, rule.version,
                      state.available - request.points, request.now, promotions, explanation)
    record = _spend_record(state, rule, request, "redeem", result)
    return Plan(result, (Posting(
        record, (Move(state.account(AccountKind.WALLET), redeemed, request.points),),
        lot_moves=take_lots(lots, request.points, request.now)),))


def plan_authorise(state: MemberState, lots: Sequence[OpenLot], rule: RuleVersion,
                   request: SpendInput, hold_id: str, ttl_seconds: int,
                   promotions: tuple[AppliedPromotion, ...] = (),
                   explanation: tuple[str, ...] = ()) -> Plan[HoldPlaced]:
    """Hold points: the same checks as a redemption; wallet -> held, lots consumed at once so
    held points cannot be spent twice. ``rule`` carries a PointsDiscount's better point value
    when one applies (``promotions`` names it); the answer keeps that value for the capture."""
    value = _check_spend(state, rule, request)
    expires_at = request.now + timedelta(seconds=ttl_seconds)
    discounted = (str(rule.burn.point_value_minor)
                  if promotions and rule.burn is not None else None)
    result = HoldPlaced(request.operation_id, hold_id, request.points, value, rule.version,
                        expires_at, state.available - request.points, promotions, explanation,
                        discounted)
    record = replace(_spend_record(state, rule, request, "authorise", result), hold_id=hold_id)
    hold = NewHold(hold_id, request.partner_id, state.member_id, request.points,
                   request.basket_amount_minor, request.purchase_id, expires_at)
    return Plan(result, (Posting(
        record, (Move(state.account(AccountKind.WALLET), state.account(AccountKind.HELD),
                      request.points),),
        lot_moves=take_lots(lots, request.points, request.now), new_hold=hold),))


def _check_spend(state: MemberState, rule: RuleVersion, request: SpendInput) -> Money:
    quote = quote_burn(rule, points=request.points,
                       basket_amount_minor=request.basket_amount_minor)
    if request.points > state.available:
        raise InsufficientPoints(requested=request.points, available=state.available)
    return Money(quote.value_minor, request.currency)


def _spend_record(state: MemberState, rule: RuleVersion, request: SpendInput, kind: str,
                  result: object) -> OperationRecord:
    return OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind=kind, points=-request.points, result=result, key=request.key,
        fingerprint=request.fingerprint, rule=rule, channel=request.channel,
        purchase_id=request.purchase_id, amount_minor=request.basket_amount_minor,
        currency=request.currency,
    )
