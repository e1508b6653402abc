"""The earn planner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.errors import CapExceeded
from gateway.core.money import Money
from gateway.ledger.chart import AccountKind
from gateway.ledger.model import BonusPosted, Earned, OperationRecord
from gateway.ledger.planners.state import MemberState, Move, NewLot, Plan, Posting
from gateway.ledger.promotions import NO_PROMOTIONS, Promotions, applied, skipped
from gateway.ledger.repository import Account
from gateway.promotions.model import Award
from gateway.promotions.repository import AwardRow, holdout_rows
from partners.config import RuleVersion
from partners.rules import CheckedPurchase, EarnQuote, PurchaseFacts, quote_earn


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
              request: EarnInput, promotions: Promotions = NO_PROMOTIONS,
              quote: EarnQuote | None = None) -> Plan[Earned]:
    """Points under ``rule`` (CAP_EXCEEDED when a cap leaves none), credited to the wallet (or
    to pending while the partner's return window lasts), debt repaid first from them.

    Campaigns (decision 020): each award is one more move, from its funder's account to the
    same target; its points join the earn's lot and the operation's points. A cap that leaves
    no base points refuses the earn, bonus included (nothing is posted); base points of 0 for
    another reason (the rule's minimum spend) still post the bonus (docs/decisions/024)."""
    if quote is None:  # the caller quoted already when campaigns needed the base points
        quote = quote_earn(rule, request.facts, earned_today=earned_today)
    if quote.points == 0 and quote.capped_by in ("transaction_cap", "daily_cap"):
        cap = (rule.earn.cap_per_member_daily if quote.capped_by == "daily_cap"
               else rule.earn.cap_per_transaction) if rule.earn else 0
        raise CapExceeded(
            "the member reached this partner's earn cap; nothing was posted. "
            + " ".join(quote.explanation), cap=cap or 0, field="amount",
        )
    # The purchaser's awards, in one pass (an earn may apply dozens of campaigns): their
    # lines, their promotion_awards rows, the budgeted ones' counters and each funder's points.
    awards: list[Award] = []
    lines: list[str] = []
    rows: list[AwardRow] = []
    counters: list[tuple[str, int, int]] = []
    by_funder: dict[str, int] = {}  # one transfer per funder, its awards summed (below)
    bonus = 0
    budgeted = promotions.budgeted
    for a in promotions.evaluation.awards:
        if a.member_id != state.member_id:
            continue  # a referrer's: its own operation (_others_postings)
        awards.append(a)
        lines.append(a.explanation)
        bonus += a.points
        till = a.till_reward
        rows.append(AwardRow(a.campaign_id, a.version, a.funder, a.member_id, a.points, 1,
                             None if till is None else till.code))
        if a.campaign_id in budgeted:
            counters.append((a.campaign_id, a.points, 1))
        if a.points:
            by_funder[a.funder] = by_funder.get(a.funder, 0) + a.points
    total = quote.points + bonus
    pending_days = rule.earn.pending_days if rule.earn else 0
    expiry_days = rule.earn.expiry_days if rule.earn else 365
    # Pending points repay debt when they are released, not before.
    repay = 0 if pending_days else min(total, state.debt)
    credited = 0 if pending_days else total
    now = request.now
    # The "why", in one list: the rule's lines, each coupon presented (used, or why not), then
    # each campaign applied to this member and each campaign that matched but was skipped, with
    # its reason (a referrer's award is the referrer's own operation, not explained here).
    explanation = (quote.explanation + promotions.notes + tuple(lines)
                   + tuple(s.explanation for s in promotions.evaluation.skips))
    result = Earned(
        operation_id=request.operation_id, points=total, rule_version=rule.version,
        explanation=explanation, debt_repaid=repay,
        available=state.available + credited - repay if request.show_available else None,
        recorded_at=now, pending=total - credited, bonus_points=bonus,
        promotions=applied(awards), skipped=skipped(promotions.evaluation),
    )
    record = OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind="earn", points=total, result=result, key=request.key,
        fingerprint=request.fingerprint, rule=rule, occurred_at=request.occurred_at,
        channel=request.channel, purchase_id=request.purchase_id,
        amount_minor=request.amount.amount_minor, currency=request.amount.currency,
    )
    if promotions.evaluation.skips:
        rows.extend(holdout_rows(promotions.evaluation, state.member_id))
    # A referrer's reward: a bonus operation of its own on the referrer's accounts, after the
    # earn (its parent), with its own lot (origin: this partner, the earn's expiry).
    others = tuple(_others_postings(promotions, request, expiry_days))
    if not total:
        return Plan(result, (Posting(record, awards=tuple(rows), counters=tuple(counters)),
                             *others))
    target = state.account(AccountKind.PENDING if pending_days else AccountKind.WALLET)
    moves = [Move(issued, target, quote.points)] if quote.points else []
    # One transfer per funder (its awards summed): which campaign gave what is in the
    # promotion_awards rows; 35 awards cost 2 transfers, not 35 (benchmarks/campaigns.py).
    moves.extend(Move(promotions.funders[funder], target, points)
                 for funder, points in sorted(by_funder.items()))
    if repay:
        moves.append(Move(state.account(AccountKind.WALLET), state.account(AccountKind.DEBT),
                          repay))
    lot = NewLot(request.partner_id, total, now, now + timedelta(days=expiry_days),
                 now + timedelta(days=pending_days), taken=repay)
    return Plan(result, (Posting(record, tuple(moves), new_lots=(lot,), awards=tuple(rows),
                                 counters=tuple(counters)), *others))


def _others_postings(promotions: Promotions, request: EarnInput,
                     expiry_days: int) -> Iterator[Posting]:
    """One ``bonus`` operation per other member an award goes to (a referrer)."""
    if not promotions.others:
        return
    now = request.now
    purchaser = {a.member_id for a in promotions.evaluation.awards} - set(promotions.others)
    rewarded = {a.campaign_id for a in promotions.evaluation.awards if a.member_id in purchaser}
    for n, (member_id, other) in enumerate(sorted(promotions.others.items())):
        awards = [a for a in promotions.evaluation.awards if a.member_id == member_id]
        if not awards:
            continue
        total = sum(a.points for a in awards)
        op_id = f"{request.operation_id}r{n}"  # the earn's id, then r0, r1: one per referrer
        record = OperationRecord(
            id=op_id, partner_id=request.partner_id, member_id=member_id, kind="bonus",
            points=total, result=BonusPosted(op_id, total, applied(awards), now),
            parent_id=request.operation_id, channel=request.channel)
        wallet = other.account(AccountKind.WALLET)
        by_funder: dict[str, int] = {}
        for award in awards:
            if award.points:
                by_funder[award.funder] = by_funder.get(award.funder, 0) + award.points
        moves = tuple(Move(promotions.funders[f], wallet, p) for f, p in sorted(by_funder.items()))
        lots = (NewLot(request.partner_id, total, now, now + timedelta(days=expiry_days), now),
                ) if total else ()
        rows = tuple(AwardRow(a.campaign_id, a.version, a.funder, member_id, a.points, 1,
                              a.till_reward.code if a.till_reward else None) for a in awards)
        # A referral is one reward of its campaign: the referrer's award counts its points,
        # and the reward only when the purchaser got none from that campaign (referredPoints 0).
        counters = tuple((a.campaign_id, a.points, 0 if a.campaign_id in rewarded else 1)
                         for a in awards if a.campaign_id in promotions.budgeted)
        yield Posting(record, moves, new_lots=lots, awards=rows, counters=counters)
