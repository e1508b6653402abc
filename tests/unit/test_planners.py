"""The ledger's planners (gateway.ledger.planners) on plain values, no database: what each
command posts, in exact points, and the order in which they refuse. Hypothesis properties run
on the planners directly: lots are consumed soonest expiry first and exactly, a sweep conserves
points, and what a spend leaves is what the wallet had less what it spent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.errors import (
    CapExceeded,
    CaptureExceedsHold,
    HoldAlreadySettled,
    HoldExpired,
    InsufficientPoints,
    NothingToReturn,
    RedemptionNotAccepted,
)
from gateway.core.money import Money
from gateway.ledger.chart import MEMBER_KINDS, AccountKind
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import Returned
from gateway.ledger.planners import (
    EarnInput,
    HoldInput,
    HoldState,
    MemberState,
    OpenLot,
    Posting,
    ReturnInput,
    SpendInput,
    SweepState,
    plan_authorise,
    plan_capture,
    plan_earn,
    plan_refund_expiry,
    plan_return,
    plan_spend,
    plan_sweep,
    plan_void,
    records_operation,
    swept,
    take_lots,
)
from gateway.ledger.repository import Account
from partners.config import BurnRule, Channel, EarnRule, RuleVersion, SettlementPrices
from partners.rules import PurchaseFacts

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTLEMENT = SettlementPrices("EUR", Fraction(1, 4), Fraction(22, 100), Fraction(2, 100))
EARN = EarnRule(points=1, per_amount_minor=1000, cap_per_transaction=500, expiry_days=365)
BURN = BurnRule(point_value_minor=Fraction(10), max_basket_share=Fraction(1, 2), min_points=50)
RULE = RuleVersion("shop", 3, datetime(2026, 1, 1, tzinfo=UTC), EARN, BURN, SETTLEMENT)
ISSUED = Account(100, "partner:shop:issued", AccountKind.ISSUED)
REDEEMED = Account(101, "partner:shop:redeemed", AccountKind.REDEEMED)
BREAKAGE = Account(102, "coalition:breakage", AccountKind.BREAKAGE)


def member(wallet: int = 0, held: int = 0, pending: int = 0, debt: int = 0) -> MemberState:
    accounts = {kind: Account(i + 1, f"member:m:{kind}", kind)
                for i, kind in enumerate(MEMBER_KINDS)}
    balances = {AccountKind.WALLET: wallet, AccountKind.HELD: held,
                AccountKind.PENDING: pending, AccountKind.DEBT: -debt}
    return MemberState("m", accounts, balances)


def earn_input(amount_minor: int, *, show: bool = True) -> EarnInput:
    return EarnInput("shop", "store", "p-1", Money(amount_minor, "UAH"), "k", "fp",
                     PurchaseFacts(amount_minor, "UAH", Channel.STORE, ()), NOW, NOW, "op-1",
                     show_available=show)


def spend_input(points: int, basket_minor: int = 1_000_000) -> SpendInput:
    return SpendInput("shop", "UAH", points, basket_minor, "k", "fp", None, None, NOW, "op-2")


def lot(lot_id: int, remaining: int, days: int, *, origin: str = "shop",
        pending: bool = False, available_in_days: int = 0) -> OpenLot:
    return OpenLot(lot_id, origin, remaining, NOW + timedelta(days=days), pending,
                   NOW + timedelta(days=available_in_days))


def net(state: MemberState, postings: tuple[Posting, ...]) -> dict[AccountKind, int]:
    after = swept(state, postings)
    return {kind: after.balances[kind] - state.balances[kind] for kind in MEMBER_KINDS}


# --- earn -----------------------------------------------------------------------------------------
def test_earn_credits_the_wallet_and_creates_one_lot() -> None:
    plan = plan_earn(member(wallet=40), RULE, 0, ISSUED, earn_input(120_000))
    assert (plan.result.points, plan.result.available, plan.result.debt_repaid) == (120, 160, 0)
    (posting,) = plan.postings
    assert posting.record.kind == "earn" and posting.record.points == 120
    assert net(member(wallet=40), plan.postings)[AccountKind.WALLET] == 120
    (new,) = posting.new_lots
    assert (new.points, new.taken, new.expires_at) == (120, 0, NOW + timedelta(days=365))


def test_earn_repays_debt_first_and_takes_it_from_the_new_lot() -> None:
    state = member(wallet=0, debt=30)
    plan = plan_earn(state, RULE, 0, ISSUED, earn_input(120_000))
    assert (plan.result.debt_repaid, plan.result.available) == (30, 90)
    assert net(state, plan.postings) == {AccountKind.WALLET: 90, AccountKind.HELD: 0,
                                         AccountKind.PENDING: 0, AccountKind.DEBT: 30}
    assert plan.postings[0].new_lots[0].taken == 30


def test_earn_with_a_return_window_goes_to_pending_and_repays_nothing() -> None:
    windowed = RuleVersion("shop", 4, RULE.effective_from,
                           EarnRule(points=1, per_amount_minor=1000, pending_days=14), BURN,
                           SETTLEMENT)
    state = member(debt=30)
    plan = plan_earn(state, windowed, 0, ISSUED, earn_input(120_000))
    assert (plan.result.pending, plan.result.debt_repaid) == (120, 0)
    assert net(state, plan.postings)[AccountKind.PENDING] == 120
    assert plan.postings[0].new_lots[0].available_at == NOW + timedelta(days=14)


def test_earn_by_card_shows_no_balance() -> None:
    assert plan_earn(member(wallet=40), RULE, 0, ISSUED,
                     earn_input(120_000, show=False)).result.available is None


def test_earn_capped_to_nothing_is_cap_exceeded() -> None:
    daily = RuleVersion("shop", 5, RULE.effective_from,
                        EarnRule(points=1, per_amount_minor=1000, cap_per_member_daily=100),
                        BURN, SETTLEMENT)
    with pytest.raises(CapExceeded):
        plan_earn(member(), daily, 100, ISSUED, earn_input(120_000))


# --- spend ----------------------------------------------------------------------------------------
def test_redeem_takes_soonest_expiring_lots_first() -> None:
    lots = [lot(1, 30, days=90), lot(2, 50, days=10), lot(3, 40, days=400)]
    plan = plan_spend(member(wallet=120), lots, RULE, REDEEMED, spend_input(60))
    assert (plan.result.points, plan.result.available, plan.result.value) == (
        60, 60, Money(600, "UAH"))
    assert plan.postings[0].lot_moves == (LotTake(2, "shop", -50), LotTake(1, "shop", -10))


def test_spend_refusals_follow_the_result_order() -> None:
    no_burn = RuleVersion("shop", 6, RULE.effective_from, EARN, None, SETTLEMENT)
    with pytest.raises(RedemptionNotAccepted):  # before the cap and the balance
        plan_spend(member(), [], no_burn, REDEEMED, spend_input(10**9, 100))
    with pytest.raises(CapExceeded):  # the basket's share, before the balance
        plan_spend(member(), [], RULE, REDEEMED, spend_input(10**6, 100))
    with pytest.raises(InsufficientPoints):
        plan_spend(member(wallet=59), [lot(1, 59, 30)], RULE, REDEEMED, spend_input(60))


def test_authorise_moves_wallet_to_held_and_places_a_hold() -> None:
    state = member(wallet=100)
    plan = plan_authorise(state, [lot(1, 100, 30)], RULE, spend_input(60), "hold-1", 600)
    hold = plan.postings[0].new_hold
    assert hold is not None and (hold.points, hold.expires_at) == (60,
                                                                   NOW + timedelta(seconds=600))
    assert net(state, plan.postings)[AccountKind.HELD] == 60
    assert plan.result.available == 40


def hold(points: int = 60, *, status: str = "authorised", expires_in: int = 600) -> HoldState:
    return HoldState("hold-1", "shop", "m", "op-a", points, 100_000, None, status,
                     NOW + timedelta(seconds=expires_in), NOW - timedelta(minutes=1),
                     (LotTake(7, "shop", -40), LotTake(3, "shop", -20)))


def hold_input(points: int | None = None) -> HoldInput:
    return HoldInput("shop", "UAH", "k", "fp", NOW, "op-c", points)


def test_capture_part_gives_the_rest_back_to_the_latest_expiring_lots() -> None:
    state = member(wallet=40, held=60)
    plan = plan_capture(state, hold(), RULE, REDEEMED, hold_input(55))
    assert (plan.result.points, plan.result.released, plan.result.available) == (55, 5, 45)
    assert plan.postings[0].lot_moves == (LotTake(7, "shop", 5),)
    assert plan.postings[0].settle_hold == ("hold-1", "captured", 55)
    assert net(state, plan.postings)[AccountKind.HELD] == -60


def test_capture_refusals_follow_the_result_order() -> None:
    with pytest.raises(HoldAlreadySettled):  # settled, though also past its expiry
        plan_capture(member(), hold(status="captured", expires_in=-1), RULE, REDEEMED,
                     hold_input())
    with pytest.raises(HoldExpired):  # expired, though asking for more than it holds
        plan_capture(member(), hold(expires_in=-1), RULE, REDEEMED, hold_input(1_000))
    with pytest.raises(CaptureExceedsHold):
        plan_capture(member(), hold(), RULE, REDEEMED, hold_input(61))


def test_void_releases_everything_into_the_lots() -> None:
    plan = plan_void(member(wallet=40, held=60), hold(expires_in=-1), hold_input())
    assert (plan.result.released, plan.result.available) == (60, 100)
    assert plan.postings[0].lot_moves == (LotTake(7, "shop", 40), LotTake(3, "shop", 20))


# --- sweep ----------------------------------------------------------------------------------------
def ids() -> list[str]:
    return [f"op-s{n}" for n in range(100)]


def test_sweep_releases_repays_unholds_and_expires_in_that_order() -> None:
    state = member(wallet=50, held=60, pending=70, debt=20)
    lots = (lot(1, 50, days=-1),  # expired
            lot(2, 70, days=100, pending=True, available_in_days=-1),  # matured
            lot(3, 0, days=-2), lot(7, 0, days=300))  # emptied by the lapsed hold
    lapsed = HoldState("hold-1", "shop", "m", "op-a", 60, 100_000, None, "authorised",
                       NOW - timedelta(seconds=1), NOW - timedelta(days=1),
                       (LotTake(7, "shop", -40), LotTake(3, "shop", -20)))
    postings = plan_sweep(SweepState(state, lots, (lapsed,)), NOW, BREAKAGE, iter(ids()))
    assert [p.record.kind for p in postings] == ["release", "hold_expired", "expire"]
    release, unhold, expire = postings
    assert release.released_lots == (2,)
    assert release.lot_moves == (LotTake(2, "shop", -20),)  # the debt, from the released lot
    assert unhold.settle_hold == ("hold-1", "expired", 0)
    # lot 1 (expired) and lot 3 (expired, refilled by the lapsed hold) become breakage
    assert expire.lot_moves == (LotTake(1, "shop", -50), LotTake(3, "shop", -20))
    assert net(state, postings) == {AccountKind.WALLET: 70 - 20 + 60 - 70,
                                    AccountKind.HELD: -60, AccountKind.PENDING: -70,
                                    AccountKind.DEBT: 20}


def test_sweep_with_nothing_due_posts_nothing() -> None:
    state = SweepState(member(wallet=10), (lot(1, 10, days=5),), ())
    assert plan_sweep(state, NOW, BREAKAGE, iter(ids())) == ()


def test_a_fully_returned_pending_lot_is_released_without_an_operation() -> None:
    lots = (lot(2, 0, days=100, pending=True, available_in_days=-1),)
    (posting,) = plan_sweep(SweepState(member(), lots, ()), NOW, BREAKAGE, iter(ids()))
    assert not records_operation(posting) and posting.record is None
    assert posting.released_lots == (2,)


# --- properties -----------------------------------------------------------------------------------
LOTS = st.lists(st.tuples(st.integers(0, 500), st.integers(-30, 400), st.booleans()),
                max_size=8)


@given(LOTS, st.integers(0, 2_000))
def test_take_lots_takes_exactly_soonest_expiry_first(raw: list[tuple[int, int, bool]],
                                                      points: int) -> None:
    lots = [lot(i, remaining, days, pending=pending)
            for i, (remaining, days, pending) in enumerate(raw)]
    spendable = [x for x in lots if x.remaining > 0 and not x.pending and x.expires_at > NOW]
    if points > sum(x.remaining for x in spendable):
        with pytest.raises(RuntimeError):
            take_lots(lots, points, NOW)
        return
    takes = take_lots(lots, points, NOW)
    assert -sum(t.points for t in takes) == points
    by_id = {x.id: x for x in lots}
    assert all(by_id[t.lot_id] in spendable and -t.points <= by_id[t.lot_id].remaining
               for t in takes)
    # every lot expiring sooner than one taken from was emptied first
    taken = {t.lot_id for t in takes}
    for t in takes[:-1]:
        assert -t.points == by_id[t.lot_id].remaining
    if takes:
        last = by_id[takes[-1].lot_id]
        assert all(x.id in taken for x in spendable
                   if (x.expires_at, x.id) < (last.expires_at, last.id))


@given(LOTS, st.integers(0, 300), st.booleans())
def test_a_sweep_conserves_points(raw: list[tuple[int, int, bool]], debt: int,
                                  lapsed: bool) -> None:
    """Every point leaves one account for another: the member's accounts change by exactly
    what breakage receives, and the wallet never goes below zero."""
    lots = tuple(lot(i, remaining, days, pending=pending, available_in_days=days // 2)
                 for i, (remaining, days, pending) in enumerate(raw))
    wallet = sum(x.remaining for x in lots if not x.pending)
    pending = sum(x.remaining for x in lots if x.pending)
    holds: tuple[HoldState, ...] = ()
    held = 0
    if lapsed and lots:
        held = 10
        holds = (HoldState("h", "shop", "m", "op-a", held, 1000, None, "authorised",
                           NOW - timedelta(seconds=1), NOW - timedelta(days=1),
                           (LotTake(lots[0].id, "shop", -held),)),)
    state = member(wallet=wallet, held=held, pending=pending, debt=debt)
    postings = plan_sweep(SweepState(state, lots, holds), NOW, BREAKAGE, iter(ids()))
    change = net(state, postings)
    to_breakage = sum(m.amount for p in postings for m in p.moves if m.credit == BREAKAGE)
    assert sum(change.values()) == -to_breakage
    after = swept(state, postings)
    assert after.available >= 0 and after.debt >= 0 and after.balances[AccountKind.HELD] == 0


# --- return ---------------------------------------------------------------------------------------
def return_input(amount_minor: int, *, prior: tuple[Returned, ...] = (), spent: int = 0,
                 negative: bool = True, pending_lot: tuple[int, int] | None = None,
                 lots: tuple[OpenLot, ...] = (), takes: tuple[LotTake, ...] = ()
                 ) -> ReturnInput:
    return ReturnInput("shop", "UAH", "p-1", amount_minor, "k", "fp", NOW, "op-r", "op-e", 120,
                       120_000, prior, spent, negative, pending_lot, lots, frozenset({9}),
                       takes, {}, {t.lot_id: t.lot_id for t in takes})


def test_return_reverses_in_proportion_rounding_up_and_takes_the_earned_lot_first() -> None:
    state = member(wallet=200)
    lots = (lot(1, 150, days=10), lot(9, 50, days=300))
    plan = plan_return(state, ISSUED, REDEEMED, return_input(40_001, lots=lots))
    # 120 points * 40,001 / 120,000 = 40.0008 -> 41 (CEIL: never leaves points for goods back)
    assert (plan.result.points_reversed, plan.result.available) == (41, 159)
    assert plan.postings[0].lot_moves == (LotTake(9, "shop", -41),)


def test_return_beyond_the_wallet_is_debt_or_unrecovered_by_policy() -> None:
    owed = plan_return(member(wallet=10), ISSUED, REDEEMED,
                       return_input(120_000, lots=(lot(1, 10, 5),))).result
    assert (owed.points_reversed, owed.points_owed, owed.points_unrecovered, owed.debt) == (
        10, 110, 0, 110)
    lost = plan_return(member(wallet=10), ISSUED, REDEEMED,
                       return_input(120_000, negative=False, lots=(lot(1, 10, 5),))).result
    assert (lost.points_reversed, lost.points_owed, lost.points_unrecovered) == (10, 0, 110)


def test_return_refunds_spent_points_into_the_lots_they_came_from() -> None:
    takes = (LotTake(4, "other", -30), LotTake(5, "shop", -20))
    lots = (lot(4, 0, days=50, origin="other"), lot(5, 0, days=20))
    plan = plan_return(member(wallet=0), ISSUED, REDEEMED,
                       return_input(60_000, spent=50, lots=lots, takes=takes))
    # half returned: 25 spent points back (FLOOR), 60 earned points reversed from them
    assert plan.result.points_refunded == 25
    assert plan.postings[0].lot_moves[0] == LotTake(4, "other", 25)


def test_a_refund_into_lots_past_their_expiry_expires_in_the_same_plan() -> None:
    takes = (LotTake(4, "other", -30), LotTake(5, "shop", -20))
    lots = (lot(4, 0, days=-1, origin="other"), lot(5, 0, days=20), lot(6, 100, days=30))
    state = member(wallet=100)
    request = return_input(120_000, spent=50, negative=False, lots=lots, takes=takes)
    plan = plan_return(state, ISSUED, REDEEMED, request)
    assert plan.postings[0].lot_moves[:2] == (LotTake(4, "other", 30), LotTake(5, "shop", 20))
    (expire,) = plan_refund_expiry(state, request, plan, BREAKAGE, iter(["op-x"]))
    assert expire.record is not None
    assert (expire.record.kind, expire.record.partner_id, expire.record.points) == (
        "expire", "other", -30)
    assert expire.lot_moves == (LotTake(4, "other", -30),)
    # 50 refunded (30 of them into expired lot 4, gone at once), 120 reversed: wallet 0
    assert net(state, (*plan.postings, expire))[AccountKind.WALLET] == -100
    live = return_input(120_000, spent=50, negative=False, takes=takes, lots=(
        lot(4, 0, days=1, origin="other"), lot(5, 0, days=20), lot(6, 100, days=30)))
    assert plan_refund_expiry(state, live, plan_return(state, ISSUED, REDEEMED, live),
                              BREAKAGE, iter(["op-x"])) == ()


def test_a_second_return_of_everything_left_completes_the_first_exactly() -> None:
    first = plan_return(member(wallet=500), ISSUED, REDEEMED,
                        return_input(40_001, lots=(lot(1, 500, 30),))).result
    second = plan_return(member(wallet=first.available), ISSUED, REDEEMED,
                         return_input(79_999, prior=(first,), lots=(lot(1, 459, 30),))).result
    assert first.points_reversed + second.points_reversed == 120
    with pytest.raises(NothingToReturn):
        plan_return(member(), ISSUED, REDEEMED,
                    return_input(1, prior=(first, second)))
