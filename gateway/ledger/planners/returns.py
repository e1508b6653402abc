"""The return planner: reverse earned points, refund spent ones into their lots, and expire
what a refund put back into lots already past their expiry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.core.errors import InvalidAmount, NothingToReturn
from gateway.core.money import Money, Rounding
from gateway.ledger.chart import AccountKind
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import (
    AppliedPromotion,
    OperationRecord,
    ReferralReversed,
    Returned,
    ReversedPromotion,
)
from gateway.ledger.planners.lots import apply_takes, take_lots
from gateway.ledger.planners.state import MemberState, Move, OpenLot, Plan, Posting
from gateway.ledger.planners.sweep import SweepState, plan_sweep, swept
from gateway.ledger.repository import Account
from gateway.promotions.repository import AwardRow
from partners.config import RuleVersion
from partners.rules import proportional_points


@dataclass(frozen=True, slots=True)
class ReturnInput:
    """A return, loaded: the purchase's earn and history, the member (the earner, or the
    survivor of a merge), and the lots the return may touch."""

    partner_id: str
    currency: str
    purchase_id: str
    amount_minor: int  # returned now
    key: str
    fingerprint: str
    now: datetime
    operation_id: str
    earn_id: str
    earned_points: int
    purchase_total_minor: int
    prior: tuple[Returned, ...]  # earlier returns of the purchase
    spent: int  # points the earner spent on the purchase (redeems and captures)
    negative_allowed: bool  # the partner's policy: a return may leave debt
    pending_lot: tuple[int, int] | None  # (lot id, remaining) of the earn's lot while pending
    lots: tuple[OpenLot, ...]  # spendable lots, and the lots refunds may go back into
    earned_lots: frozenset[int]  # the earn's own lots (their survivors' copies): taken first
    spend_takes: tuple[LotTake, ...] = ()  # what the spends took from lots, latest expiry first
    restored: Mapping[int, int] = field(default_factory=dict)  # put back by earlier returns
    current: Mapping[int, int] = field(default_factory=dict)  # lot -> its copy after merges
    # Campaigns (decision 020): what the earn applied (``earned_points`` is its base points
    # only), each funder's account, and the campaigns whose counters a return releases.
    awards: tuple[AppliedPromotion, ...] = ()
    funders: Mapping[str, Account] = field(default_factory=dict)
    budgeted: frozenset[str] = frozenset()
    # The member the earn's awards went to (the earn's member; None: the member the return
    # posts on). Their reversal rows are written under it, not under a survivor, so a member
    # set holds an award and its reversal together (decision 037).
    awarded_to: str | None = None


def plan_return(state: MemberState, issued: Account, redeemed: Account,
                request: ReturnInput) -> Plan[Returned]:
    """Reverse earned points in proportion to the amount returned (CEIL: never leaves the
    member points for goods given back) and refund points spent on the purchase (FLOOR: never
    more than was spent), cumulatively over every return of the purchase. Reversed points come
    from pending first, then the wallet, then (if the policy allows) as debt; what is left is
    unrecovered. Refunds go back into the lots the spends consumed (:func:`refund_lots`)."""
    returned_before = max((p.amount_returned_total.amount_minor for p in request.prior),
                          default=0)
    left = request.purchase_total_minor - returned_before
    if left == 0:
        raise NothingToReturn(f"purchase {request.purchase_id!r} was fully returned already",
                              field="purchaseId")
    if request.amount_minor > left:
        raise InvalidAmount(
            f"only {Money(left, request.currency)} of this purchase is left to return",
            field="amount")
    total, returned_total = request.purchase_total_minor, returned_before + request.amount_minor
    reverse_base = proportional_points(request.earned_points, returned_total, total,
                                       Rounding.CEIL) - sum(p.points_reversed_total
                                                            - p.bonus_reversed
                                                            for p in request.prior)
    reversed_awards = _reverse_awards(request.awards, request.prior, returned_total,
                                      request.purchase_total_minor)
    reverse = reverse_base + sum(r.points for r in reversed_awards)
    refund = proportional_points(request.spent, returned_total, total, Rounding.FLOOR) - sum(
        p.points_refunded for p in request.prior)
    restores = refund_lots(request.spend_takes, request.restored, request.current, refund)
    lots = {lot.id: lot for lot in request.lots}
    apply_takes(lots, restores)
    # Refunded points that go back into lots already past their expiry expire again at once.
    lapsed = sum(r.points for r in restores if lots[r.lot_id].expires_at <= request.now)
    from_pending = min(reverse, request.pending_lot[1]) if request.pending_lot else 0
    wallet_after_refund = state.available + refund - lapsed
    taken = min(reverse - from_pending, wallet_after_refund)
    owed = reverse - from_pending - taken if request.negative_allowed else 0
    unrecovered = reverse - from_pending - taken - owed
    result = Returned(
        operation_id=request.operation_id, purchase_id=request.purchase_id,
        points_reversed=from_pending + taken, points_owed=owed,
        points_unrecovered=unrecovered, points_refunded=refund,
        amount_returned_total=Money(returned_total, request.currency),
        available=wallet_after_refund - taken, debt=owed + state.debt, recorded_at=request.now,
        promotions_reversed=tuple(r for r in reversed_awards if r.points),
    )
    record = OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind="return", points=refund - taken, result=result, key=request.key,
        fingerprint=request.fingerprint, purchase_id=request.purchase_id,
        parent_id=request.earn_id, amount_minor=request.amount_minor,
        currency=request.currency,
    )
    moves: list[Move] = []
    lot_moves: list[LotTake] = list(restores)
    if refund:
        moves.append(Move(redeemed, state.account(AccountKind.WALLET), refund))
    # The points taken back go to the partner's issued account (the base) first, then to each
    # campaign's funder in the order applied; what is unrecovered is unrecovered from the last.
    back_to = [(issued, reverse_base)] + [(request.funders[r.funder], r.points)
                                          for r in reversed_awards if r.points]
    if request.pending_lot and from_pending:
        moves.extend(_pay_back(state.account(AccountKind.PENDING), from_pending, back_to))
        lot_moves.append(LotTake(request.pending_lot[0], request.partner_id, -from_pending))
    if taken:
        moves.extend(_pay_back(state.account(AccountKind.WALLET), taken, back_to))
        lot_moves.extend(take_lots(lots.values(), taken, request.now,
                                   prefer=request.earned_lots))
    if owed:
        moves.extend(_pay_back(state.account(AccountKind.DEBT), owed, back_to))
    complete = returned_total == total
    awarded_to = request.awarded_to or state.member_id
    rows = tuple(AwardRow(r.campaign_id, r.version, r.funder, awarded_to, -r.points,
                          -1 if complete else 0)
                 for r in reversed_awards if r.points or complete)
    counters = tuple((r.campaign_id, -r.points, -1 if complete else 0)
                     for r in reversed_awards
                     if r.campaign_id in request.budgeted and (r.points or complete))
    return Plan(result, (Posting(record, tuple(moves), lot_moves=tuple(lot_moves),
                                 awards=rows, counters=counters),))


def _reverse_awards(awards: Sequence[AppliedPromotion],
                    prior: Iterable[Returned | ReferralReversed], returned_total: int,
                    purchase_total: int) -> list[ReversedPromotion]:
    """Each applied campaign's share of the return: its points in proportion to the amount
    returned so far (CEIL, as the base points), less what earlier returns took back of it;
    cumulative, so a full return reverses every award exactly. The purchaser's awards and a
    referrer's reward (decision 035) are shared out alike."""
    before: dict[tuple[str, int], int] = {}
    for earlier in prior:
        for r in earlier.promotions_reversed:
            key = (r.campaign_id, r.version)
            before[key] = before.get(key, 0) + r.points
    return [ReversedPromotion(
        a.campaign_id, a.version, a.funder,
        proportional_points(a.points, returned_total, purchase_total, Rounding.CEIL)
        - before.get((a.campaign_id, a.version), 0))
        for a in awards]


@dataclass(frozen=True, slots=True)
class ReferralReturnInput:
    """The referrer's side of a return (decision 035), loaded: the reward the referred
    member's earn posted on the referrer's accounts (its ``bonus`` operation), what earlier
    returns of the purchase took back of it, and where the points go back to."""

    operation_id: str  # the reversal's own: the return's id and "r0"
    bonus_operation_id: str
    partner_id: str
    awards: tuple[AppliedPromotion, ...]  # the reward's campaigns
    prior: tuple[ReferralReversed, ...]  # earlier returns' reversals of it
    returned_total: int  # of the purchase, this return included
    purchase_total: int
    lots: tuple[OpenLot, ...]  # the referrer's spendable lots
    own_lots: frozenset[int]  # the reward's own lot: taken first
    funders: Mapping[str, Account]
    budgeted: frozenset[str]
    # Campaigns the purchaser was rewarded by too: the earn counted one reward for the two
    # sides (the referrer's counted only its points), so the reversal releases it once.
    purchaser_campaigns: frozenset[str]
    now: datetime
    # The earn's rule version: the reversal is priced at it, as the reward was (settlement).
    rule: RuleVersion | None = None
    # The member the reward went to (the bonus operation's; None: the member the reversal
    # posts on): the reversal rows are written under it (decision 037).
    awarded_to: str | None = None


def plan_referral_return(state: MemberState,
                         request: ReferralReturnInput) -> Plan[ReferralReversed] | None:
    """Take back the referrer's share of a return (decision 035): each campaign's points in
    proportion to the amount returned so far (CEIL, as the purchaser's bonus), less what
    earlier returns took; the wallet gives what it holds (the reward's own lot first), the
    rest is unrecovered, never debt. None when there is nothing to take and nothing to
    record (a partial return whose share earlier returns took already)."""
    shares = _reverse_awards(request.awards, request.prior, request.returned_total,
                             request.purchase_total)
    due = sum(r.points for r in shares)
    complete = request.returned_total == request.purchase_total
    if not due and not complete:
        return None
    taken = max(0, min(due, state.available))
    result = ReferralReversed(request.operation_id, request.bonus_operation_id, taken,
                              due - taken, request.now, tuple(r for r in shares if r.points))
    record = OperationRecord(
        id=request.operation_id, partner_id=request.partner_id, member_id=state.member_id,
        kind="return", points=-taken, result=result, parent_id=request.bonus_operation_id,
        rule=request.rule)
    moves: list[Move] = []
    lot_moves: tuple[LotTake, ...] = ()
    if taken:
        moves = _pay_back(state.account(AccountKind.WALLET), taken,
                          [(request.funders[r.funder], r.points) for r in shares if r.points])
        lot_moves = take_lots(request.lots, taken, request.now, prefer=request.own_lots)
    awarded_to = request.awarded_to or state.member_id
    rows = tuple(AwardRow(r.campaign_id, r.version, r.funder, awarded_to, -r.points,
                          -1 if complete else 0)
                 for r in shares if r.points or complete)
    counters = tuple(
        (r.campaign_id, -r.points,
         -1 if complete and r.campaign_id not in request.purchaser_campaigns else 0)
        for r in shares if r.campaign_id in request.budgeted and (r.points or complete))
    return Plan(result, (Posting(record, tuple(moves), lot_moves=lot_moves, awards=rows,
                                 counters=counters),))


def _pay_back(source: Account, amount: int, back_to: list[tuple[Account, int]]) -> list[Move]:
    """``amount`` from ``source`` to the accounts owed, in order, consuming what each is owed
    (``back_to`` is updated: the next source pays what is left)."""
    moves: list[Move] = []
    for index, (account, owed) in enumerate(back_to):
        if amount == 0:
            break
        pay = min(amount, owed)
        if pay:
            moves.append(Move(source, account, pay))
            back_to[index] = (account, owed - pay)
            amount -= pay
    assert amount == 0, "paid back more than was reversed"
    return moves


def plan_refund_expiry(state: MemberState, request: ReturnInput, plan: Plan[Returned],
                       breakage: Account, new_operation_id: Iterable[str]
                       ) -> tuple[Posting, ...]:
    """What follows a return whose refund went back into lots already past their expiry: those
    points expire at once, as housekeeping's expire postings (:func:`plan_sweep`) on the state
    the return leaves. Housekeeping ran before the return, so these lots are all that is due;
    nothing when no refund went into an expired lot."""
    lots = {lot.id: lot for lot in request.lots}
    refunded: dict[int, OpenLot] = {}
    for posting in plan.postings:
        for move in posting.lot_moves:
            if move.points <= 0:  # a take (the pending lot's too): only refunds go back
                continue
            lot = refunded.get(move.lot_id, lots[move.lot_id])
            if lot.expires_at <= request.now:
                refunded[move.lot_id] = replace(lot, remaining=lot.remaining + move.points)
    if not refunded:
        return ()
    after = SweepState(swept(state, plan.postings), tuple(refunded.values()), ())
    return plan_sweep(after, request.now, breakage, new_operation_id)


def refund_lots(takes: Sequence[LotTake], restored: Mapping[int, int],
                current: Mapping[int, int], points: int) -> tuple[LotTake, ...]:
    """Where refunded points go: back into the lots the spends consumed (``takes``, latest
    expiry first), less what earlier returns already put back (``restored``), so the origin of
    every point stays true for settlement. ``current`` maps a lot to the survivor's copy of it
    after any merges: the refund goes there."""
    taken: dict[int, int] = {}
    origin: dict[int, str] = {}
    for take in takes:  # latest expiry first; a lot and its copies share their expiry
        lot_id = current[take.lot_id]
        taken[lot_id] = taken.get(lot_id, 0) - take.points
        origin[lot_id] = take.origin_partner_id
    already: dict[int, int] = {}
    for lot_id, back in restored.items():
        already[current[lot_id]] = already.get(current[lot_id], 0) + back
    restores: list[LotTake] = []
    left = points
    for lot_id, spent in taken.items():
        if left == 0:
            break
        back = min(left, spent - already.get(lot_id, 0))
        if back > 0:
            restores.append(LotTake(lot_id, origin[lot_id], back))
            left -= back
    if left:
        raise RuntimeError(f"refund of {points} exceeds the lots the spend consumed")
    return tuple(restores)
