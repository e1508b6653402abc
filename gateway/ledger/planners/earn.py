"""The earn planner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.errors import CapExceeded
from gateway.core.money import Money
from gateway.ledger.chart import AccountKind
from gateway.ledger.model import Earned, OperationRecord
from gateway.ledger.planners.state import MemberState, Move, NewLot, Plan, Posting
from gateway.ledger.repository import Account
from partners.config import RuleVersion
from partners.rules import CheckedPurchase, PurchaseFacts, quote_earn


@dataclass(frozen=True, slots=True)
class EarnInput:
    """An earn's request, checked, with what the runner adds (key fingerprint, times, ids)."""

    partner_id: str
    channel: str
    purchase_id: str
    amount: Money
    key: str
    fingerprint: str
    facts: PurchaseFacts | CheckedPurchase
    occurred_at: datetime
    now: datetime
    operation_id: str
    show_available: bool  # False when named by a bare card number: no balance leaks


def plan_earn(state: MemberState, rule: RuleVersion, earned_today: int, issued: Account,
              request: EarnInput) -> Plan[Earned]:
    """Points under ``rule`` (CAP_EXCEEDED when a cap leaves none), credited to the wallet (or
    to pending while the partner's return window lasts), debt repaid first from them."""
    quote = quote_earn(rule, request.facts, earned_today=earned_today)
    if quote.points == 0 and quote.capped_by in ("transaction_cap", "daily_cap"):
        cap = (rule.earn.cap_per_member_daily if quote.capped_by == "daily_cap"
               else rule.earn.cap_per_transaction) if rule.earn else 0
        raise CapExceeded(
            "the member reached this partner's earn cap; nothing was posted. "
            + " ".join(quote.explanation), cap=cap or 0, field="amount",
        )
    pending_days = rule.earn.pending_days if rule.earn else 0
    expiry_days = rule.earn.expiry_days if rule.earn else 365
    # Pending points repay debt when they are released, not before.
    repay = 0 if pending_days else min(quote.points, state.debt)
    credited = 0 if pending_days else quote.points
    now = request.now
    result = Earned(
        operation_id=request.operation_id, points=quote.points, rule_version=rule.version,
        explanation=quote.explanation, debt_repaid=repay,
        available=state.available + credited - repay if request.show_available else None,
        recorded_at=now, pending=quote.points - credited,
    )
    record = OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind="earn", points=quote.points, result=result, key=request.key,
        fingerprint=request.fingerprint, rule=rule, occurred_at=request.occurred_at,
        channel=request.channel, purchase_id=request.purchase_id,
        amount_minor=request.amount.amount_minor, currency=request.amount.currency,
    )
    if not quote.points:
        return Plan(result, (Posting(record),))
    target = state.account(AccountKind.PENDING if pending_days else AccountKind.WALLET)
    moves = [Move(issued, target, quote.points)]
    if repay:
        moves.append(Move(state.account(AccountKind.WALLET), state.account(AccountKind.DEBT),
                          repay))
    lot = NewLot(request.partner_id, quote.points, now, now + timedelta(days=expiry_days),
                 now + timedelta(days=pending_days), taken=repay)
    return Plan(result, (Posting(record, tuple(moves), new_lots=(lot,)),))
