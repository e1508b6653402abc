"""The ledger's rules as pure functions: load -> **plan** -> apply.

A command loads a small state (the member's accounts and balances, the lots it may touch, the
rule in force, the purchase's history) in a few indexed reads; a planner here decides, from that
state alone, the answer, the transfers and the lot movements, as plain values; one apply step
(:func:`gateway.ledger.apply.apply`) writes them. Nothing here reads the database, the clock or
a random source (operation ids and 'now' come in as arguments), so the arithmetic and the order
of refusals have plain unit tests (tests/unit/test_planners.py) and the hypothesis properties
run on the planners directly.

Each planner checks in result-code order (``gateway.ledger.precedence``): what it is given has
passed the request's own checks and found its member; it refuses on the rule's limits, then the
balance, then (for holds) the hold's state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from gateway.core.errors import (
    CapExceeded,
    CaptureExceedsHold,
    HoldAlreadySettled,
    HoldExpired,
    InsufficientPoints,
    InvalidAmount,
    NothingToReturn,
)
from gateway.core.money import Money, Rounding
from gateway.ledger.chart import AccountKind
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import (
    Earned,
    HoldCaptured,
    HoldPlaced,
    HoldVoided,
    OperationRecord,
    Redeemed,
    Returned,
)
from gateway.ledger.repository import Account
from partners.config import RuleVersion
from partners.rules import PurchaseFacts, proportional_points, quote_burn, quote_earn

R = TypeVar("R")


# --- the state a planner is given -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberState:
    """The member's four accounts and their stored balances, as loaded once per command."""

    member_id: str
    accounts: Mapping[AccountKind, Account]
    balances: Mapping[AccountKind, int]

    def account(self, kind: AccountKind) -> Account:
        return self.accounts[kind]

    @property
    def available(self) -> int:
        return self.balances[AccountKind.WALLET]

    @property
    def debt(self) -> int:
        """Points owed, as a positive number (the debt account's balance is <= 0)."""
        return -self.balances[AccountKind.DEBT]


@dataclass(frozen=True, slots=True)
class OpenLot:
    """A lot as a planner sees it: what is left of it, where from, until when."""

    id: int
    origin_partner_id: str
    remaining: int
    expires_at: datetime
    pending: bool = False
    available_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HoldState:
    """An authorised hold, with the lot movements its authorisation made (points < 0)."""

    id: str
    partner_id: str
    member_id: str
    operation_id: str
    points: int
    basket_amount_minor: int
    purchase_id: str | None
    status: str
    expires_at: datetime
    created_at: datetime
    takes: tuple[LotTake, ...] = ()


# --- what a planner returns -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Move:
    """One transfer to post: ``amount`` points from ``debit`` to ``credit``."""

    debit: Account
    credit: Account
    amount: int


@dataclass(frozen=True, slots=True)
class NewLot:
    """A lot to create; ``taken`` of its points go at once (an earn that repays debt)."""

    origin_partner_id: str
    points: int
    earned_at: datetime
    expires_at: datetime
    available_at: datetime
    taken: int = 0


@dataclass(frozen=True, slots=True)
class NewHold:
    id: str
    partner_id: str
    member_id: str
    points: int
    basket_amount_minor: int
    purchase_id: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Posting:
    """One operation and everything it writes, in the order it is written. ``record`` is None
    for the one posting that records no operation: housekeeping releasing pending lots that were
    fully returned while pending (it only has ``released_lots``)."""

    record: OperationRecord | None
    moves: tuple[Move, ...] = ()
    lot_moves: tuple[LotTake, ...] = ()
    new_lots: tuple[NewLot, ...] = ()
    new_hold: NewHold | None = None
    settle_hold: tuple[str, str, int] | None = None  # (hold id, status, captured points)
    released_lots: tuple[int, ...] = ()  # pending lots whose return window has passed


@dataclass(frozen=True, slots=True)
class Plan(Generic[R]):
    result: R
    postings: tuple[Posting, ...] = field(default_factory=tuple)


# --- lots -----------------------------------------------------------------------------------------
def take_lots(lots: Iterable[OpenLot], points: int, at: datetime,
              prefer: Collection[int] = ()) -> tuple[LotTake, ...]:
    """Consume ``points`` from spendable lots, soonest expiry first (the lots in ``prefer``
    first, so a return takes back the very points it earned)."""
    spendable = sorted((lot for lot in lots
                        if lot.remaining > 0 and not lot.pending and lot.expires_at > at),
                       key=lambda lot: (lot.id not in prefer, lot.expires_at, lot.id))
    takes: list[LotTake] = []
    left = points
    for lot in spendable:
        if left == 0:
            break
        take = min(left, lot.remaining)
        takes.append(LotTake(lot.id, lot.origin_partner_id, -take))
        left -= take
    if left:
        raise RuntimeError(f"lots short by {left}: wallet and lots disagree")
    return tuple(takes)


def restore_takes(takes: Iterable[LotTake], points: int) -> tuple[LotTake, ...]:
    """Put ``points`` back into the lots ``takes`` consumed, in their order (a hold's lots come
    latest expiry first, so what stays captured is what would have expired soonest)."""
    restores: list[LotTake] = []
    left = points
    for take in takes:
        back = min(left, -take.points)
        if back > 0:
            restores.append(LotTake(take.lot_id, take.origin_partner_id, back))
            left -= back
    return tuple(restores)


# --- earn -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EarnInput:
    """An earn's request, checked, with what the runner adds (key fingerprint, times, ids)."""

    partner_id: str
    channel: str
    purchase_id: str
    amount: Money
    key: str
    fingerprint: str
    facts: PurchaseFacts
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


# --- spend: redeem, authorise, capture, void ------------------------------------------------------
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
               redeemed: Account, request: SpendInput) -> Plan[Redeemed]:
    """Redeem now: the rule's limits (REDEMPTION_NOT_ACCEPTED, min points, CAP_EXCEEDED), then
    the balance (INSUFFICIENT_POINTS); wallet -> the partner's redeemed account, lots consumed
    soonest expiry first."""
    value = _check_spend(state, rule, request)
    result = Redeemed(request.operation_id, request.points, value, rule.version,
                      state.available - request.points, request.now)
    record = _spend_record(state, rule, request, "redeem", result)
    return Plan(result, (Posting(
        record, (Move(state.account(AccountKind.WALLET), redeemed, request.points),),
        lot_moves=take_lots(lots, request.points, request.now)),))


def plan_authorise(state: MemberState, lots: Sequence[OpenLot], rule: RuleVersion,
                   request: SpendInput, hold_id: str, ttl_seconds: int) -> Plan[HoldPlaced]:
    """Hold points: the same checks as a redemption; wallet -> held, lots consumed at once so
    held points cannot be spent twice."""
    value = _check_spend(state, rule, request)
    expires_at = request.now + timedelta(seconds=ttl_seconds)
    result = HoldPlaced(request.operation_id, hold_id, request.points, value, rule.version,
                        expires_at, state.available - request.points)
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


# --- sweep: release pending, release lapsed holds, expire -----------------------------------------
@dataclass(frozen=True, slots=True)
class SweepState:
    """What housekeeping needs of one member: accounts and balances, every lot with points left
    (and the lots lapsed holds took from), the member's authorised holds past their expiry."""

    member: MemberState
    lots: tuple[OpenLot, ...]
    lapsed_holds: tuple[HoldState, ...]


def plan_sweep(state: SweepState, now: datetime, breakage: Account,
               new_operation_id: Iterable[str]) -> tuple[Posting, ...]:
    """Housekeeping as postings, in the order a member's next write applies them: pending
    points past their return window move to the wallet (repaying debt first from those not
    already expired), lapsed holds go back to the wallet and their lots, and every lot past its
    expiry (those just released or restored too) becomes breakage, one operation per origin
    partner. ``new_operation_id`` yields the ids for the operations written."""
    ids = iter(new_operation_id)
    member = state.member
    wallet = member.account(AccountKind.WALLET)
    lots = {lot.id: lot for lot in state.lots}
    postings: list[Posting] = []

    matured = sorted((lot for lot in lots.values()
                      if lot.pending and lot.available_at is not None
                      and lot.available_at <= now), key=lambda lot: lot.id)
    if matured:
        by_origin: dict[str, int] = defaultdict(int)
        spendable = 0  # released points not already past their expiry: only these repay debt
        for lot in matured:
            by_origin[lot.origin_partner_id] += lot.remaining
            spendable += 0 if lot.expires_at <= now else lot.remaining
            lots[lot.id] = replace(lot, pending=False)
        releases: list[Posting] = []
        for origin, points in sorted(by_origin.items()):
            if points == 0:  # fully returned while pending: nothing left to release
                continue
            record = OperationRecord(id=next(ids), partner_id=origin,
                                     member_id=member.member_id, kind="release",
                                     points=points, result={"released": points})
            releases.append(Posting(record, (Move(member.account(AccountKind.PENDING), wallet,
                                                  points),)))
        released_ids = tuple(lot.id for lot in matured)
        if not releases:  # nothing to post, but the lots leave pending all the same
            postings.append(Posting(None, released_lots=released_ids))
        else:
            releases[0] = replace(releases[0], released_lots=released_ids)
        repay = min(member.debt, spendable)
        if repay and releases:
            takes = take_lots(lots.values(), repay, now)
            _apply_takes(lots, takes)
            last = releases[-1]
            repaid = Move(wallet, member.account(AccountKind.DEBT), repay)
            releases[-1] = replace(last, moves=(*last.moves, repaid),
                                   lot_moves=last.lot_moves + takes)
        postings.extend(releases)

    for hold in sorted(state.lapsed_holds, key=lambda h: h.id):
        restores = tuple(LotTake(t.lot_id, t.origin_partner_id, -t.points) for t in hold.takes)
        _apply_takes(lots, restores)
        record = OperationRecord(id=next(ids), partner_id=hold.partner_id,
                                 member_id=member.member_id, kind="hold_expired",
                                 points=hold.points, result={"released": hold.points},
                                 hold_id=hold.id, parent_id=hold.operation_id)
        postings.append(Posting(record, (Move(member.account(AccountKind.HELD), wallet,
                                              hold.points),),
                                lot_moves=restores, settle_hold=(hold.id, "expired", 0)))

    expired: dict[str, list[LotTake]] = defaultdict(list)
    for lot in sorted(lots.values(), key=lambda lot: lot.id):
        if lot.remaining > 0 and not lot.pending and lot.expires_at <= now:
            expired[lot.origin_partner_id].append(
                LotTake(lot.id, lot.origin_partner_id, -lot.remaining))
    for origin, lot_takes in sorted(expired.items()):
        points = -sum(t.points for t in lot_takes)
        record = OperationRecord(id=next(ids), partner_id=origin, member_id=member.member_id,
                                 kind="expire", points=-points, result={"expired": points})
        postings.append(Posting(record, (Move(wallet, breakage, points),),
                                lot_moves=tuple(lot_takes)))
    return tuple(postings)


def _apply_takes(lots: dict[int, OpenLot], takes: Iterable[LotTake]) -> None:
    for take in takes:
        lot = lots[take.lot_id]
        lots[take.lot_id] = replace(lot, remaining=lot.remaining + take.points)


def swept(member: MemberState, postings: Iterable[Posting]) -> MemberState:
    """The member's balances once ``postings`` are applied (what a read shows, and what a
    command that swept first goes on from)."""
    balances = dict(member.balances)
    by_id = {account.id: kind for kind, account in member.accounts.items()}
    for posting in postings:
        for move in posting.moves:
            if move.debit.id in by_id:
                balances[by_id[move.debit.id]] -= move.amount
            if move.credit.id in by_id:
                balances[by_id[move.credit.id]] += move.amount
    return MemberState(member.member_id, member.accounts, balances)


def records_operation(posting: Posting) -> bool:
    return posting.record is not None


# --- return ---------------------------------------------------------------------------------------
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
    reverse = proportional_points(request.earned_points, returned_total, total,
                                  Rounding.CEIL) - sum(p.points_reversed_total
                                                       for p in request.prior)
    refund = proportional_points(request.spent, returned_total, total, Rounding.FLOOR) - sum(
        p.points_refunded for p in request.prior)
    restores = refund_lots(request.spend_takes, request.restored, request.current, refund)
    lots = {lot.id: lot for lot in request.lots}
    _apply_takes(lots, restores)
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
    if request.pending_lot and from_pending:
        moves.append(Move(state.account(AccountKind.PENDING), issued, from_pending))
        lot_moves.append(LotTake(request.pending_lot[0], request.partner_id, -from_pending))
    if taken:
        moves.append(Move(state.account(AccountKind.WALLET), issued, taken))
        lot_moves.extend(take_lots(lots.values(), taken, request.now,
                                   prefer=request.earned_lots))
    if owed:
        moves.append(Move(state.account(AccountKind.DEBT), issued, owed))
    return Plan(result, (Posting(record, tuple(moves), lot_moves=tuple(lot_moves)),))


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
