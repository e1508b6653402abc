"""Partial returns never take back more than was earned nor refund more than was spent, and a
purchase returned in full in any number of parts takes back exactly what it earned and refunds
exactly what was spent (DESIGN §3: rounding never creates points from nothing).

Twice: on the pure arithmetic the service uses (``proportional_points``, cumulative, CEIL for
reversals and FLOOR for refunds), and end to end through ``return_purchase`` on a real ledger."""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import InsufficientPoints, NothingToReturn
from gateway.core.money import Money, Rounding
from gateway.ledger.balances import member_balance
from gateway.ledger.chart import MEMBER_KINDS, AccountKind
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import EarnPoints, RedeemPoints, Returned, ReturnPurchase
from gateway.ledger.planners import MemberState, OpenLot, ReturnInput, plan_return
from gateway.ledger.repository import Account
from gateway.ledger.service import earn_points, redeem_points, return_purchase
from gateway.ledger.verify import verify_ledger
from partners.rules import proportional_points
from tests.support.harness import NOW, ledger_snapshot, make_gateway


@st.composite
def return_parts(draw: st.DrawFn, amount: int, *, full: bool | None = None) -> list[int]:
    """Amounts of successive partial returns, summing to at most ``amount`` (exactly, if
    ``full``)."""
    cuts = draw(st.lists(st.integers(1, amount), min_size=1, max_size=6, unique=True))
    cuts.sort()
    if full is None:
        full = draw(st.booleans())
    if full and cuts[-1] != amount:
        cuts.append(amount)
    return [b - a for a, b in itertools.pairwise([0, *cuts])]


def cumulative_shares(total: int, parts: list[int], whole: int, rounding: Rounding) -> list[int]:
    """What each return takes, the way ``return_purchase`` computes it: the rounded share of
    everything returned so far, less what earlier returns took."""
    taken, returned, out = 0, 0, []
    for part in parts:
        returned += part
        share = proportional_points(total, returned, whole, rounding) - taken
        out.append(share)
        taken += share
    return out


@settings(max_examples=500, deadline=None)
@given(data=st.data(), earned=st.integers(0, 10**7), amount=st.integers(1, 10**10))
def test_arithmetic_of_partial_returns(data: st.DataObject, earned: int, amount: int) -> None:
    spent = data.draw(st.integers(0, earned), label="spent")
    parts = data.draw(return_parts(amount), label="parts")
    reversed_ = cumulative_shares(earned, parts, amount, Rounding.CEIL)
    refunded = cumulative_shares(spent, parts, amount, Rounding.FLOOR)
    assert all(r >= 0 for r in reversed_ + refunded)
    assert sum(reversed_) <= earned
    assert sum(refunded) <= spent
    if sum(parts) == amount:
        assert (sum(reversed_), sum(refunded)) == (earned, spent)
    else:  # a part returned takes back at least its share, refunds at most its share
        assert sum(reversed_) * amount >= earned * sum(parts)
        assert sum(refunded) * amount <= spent * sum(parts)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), earned=st.integers(0, 10**6), amount=st.integers(1, 10**9),
       negative=st.booleans())
def test_partial_returns_through_the_planner(data: st.DataObject, earned: int, amount: int,
                                             negative: bool) -> None:
    """The same properties on ``plan_return`` itself, return after return, each given the
    answers of the ones before (as the service loads them), with the wallet, debt and lots
    it would see: no database."""
    spent = data.draw(st.integers(0, earned), label="spent")
    wallet = data.draw(st.integers(0, earned), label="wallet")
    parts = data.draw(return_parts(amount), label="parts")
    accounts = {kind: Account(i + 1, f"member:m:{kind}", kind)
                for i, kind in enumerate(MEMBER_KINDS)}
    issued = Account(100, "partner:p:issued", AccountKind.ISSUED)
    redeemed = Account(101, "partner:p:redeemed", AccountKind.REDEEMED)
    far = NOW + timedelta(days=300)
    spend_lot = 2  # the lot the spend took from, empty now
    prior: tuple[Returned, ...] = ()
    debt = 0
    for n, part in enumerate(parts):
        state = MemberState("m", accounts, {AccountKind.WALLET: wallet, AccountKind.HELD: 0,
                                            AccountKind.PENDING: 0, AccountKind.DEBT: -debt})
        already = sum(p.points_refunded for p in prior)
        request = ReturnInput(
            "p", "UAH", "buy", part, f"k{n}", "fp", NOW, f"op{n}", "op-earn", earned, amount,
            prior, spent, negative, None,
            (OpenLot(1, "p", wallet, far), OpenLot(spend_lot, "p", already, far)),
            frozenset({1}), (LotTake(spend_lot, "p", -spent),) if spent else (),
            {spend_lot: already} if already else {}, {spend_lot: spend_lot})
        result = plan_return(state, issued, redeemed, request).result
        assert min(result.points_reversed, result.points_owed, result.points_unrecovered,
                   result.points_refunded) >= 0
        assert result.available >= 0
        wallet, debt, prior = result.available, result.debt, (*prior, result)
    reversed_total = sum(p.points_reversed_total for p in prior)
    refunded_total = sum(p.points_refunded for p in prior)
    assert reversed_total <= earned and refunded_total <= spent
    if sum(parts) == amount:
        assert (reversed_total, refunded_total) == (earned, spent)
    else:
        assert reversed_total * amount >= earned * sum(parts)
        assert refunded_total * amount <= spent * sum(parts)


# --- through the service -----------------------------------------------------------------------
@dataclass
class Ledger:
    gw: Gateway
    clock: FixedClock
    serial: itertools.count[int]


@cache
def ledger() -> Ledger:
    """One gateway for the whole test; each example gets a fresh member and fresh purchase."""
    clock = FixedClock(NOW)
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None  # tmpfs: no fsync waits
    gw = make_gateway(Path(tempfile.mkdtemp(prefix="return-rounding-", dir=scratch)), clock=clock)
    return Ledger(gw, clock, itertools.count())


PARTNERS = {"grocery": ("UAH", 1000, 50), "electronics": ("EUR", 100, 100)}  # per point, min


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), partner=st.sampled_from(sorted(PARTNERS)),
       amount=st.integers(100, 4_000_000))
def test_returns_through_the_service(data: st.DataObject, partner: str, amount: int) -> None:
    env = ledger()
    currency, _, min_points = PARTNERS[partner]
    n = next(env.serial)
    customer, purchase = f"c-{n}", f"p-{n}"
    engine, ctx = env.gw.services.engine, env.gw.services.ledger
    member = enrol_customer(engine, env.clock, partner, customer).member_id
    # An earlier purchase leaves an older lot, so a spend may span lots and refunds must put
    # each point back where it came from, never twice.
    earlier = data.draw(st.integers(0, 2_000_000), label="earlier purchase")
    if earlier:
        earn_points(ctx, EarnPoints(partner, customer, Money(earlier, currency), "store",
                                    f"{purchase}-earlier", f"earn-{n}-earlier"))
    earned = earn_points(ctx, EarnPoints(partner, customer, Money(amount, currency), "store",
                                         purchase, f"earn-{n}")).points
    # Spend part on this purchase (refundable on return) and part elsewhere (so a return may
    # find the wallet short: debt at the grocery, unrecovered at the electronics shop).
    spent = 0
    wallet = member_balance(engine, env.clock, member).available
    on_purchase = data.draw(st.integers(0, wallet), label="spent on the purchase")
    elsewhere = data.draw(st.integers(0, wallet), label="spent elsewhere")
    basket = Money(10**12, currency)
    for points, purchase_id, key in ((on_purchase, purchase, "r1"), (elsewhere, None, "r2")):
        if points < min_points:
            continue
        try:
            redeem_points(ctx, RedeemPoints(partner, customer, points, basket, f"{key}-{n}",
                                            purchase_id=purchase_id))
        except InsufficientPoints:
            continue
        spent += points if purchase_id else 0

    parts = data.draw(return_parts(amount), label="returns")
    reversed_total = refunded_total = 0
    for i, part in enumerate(parts):
        r = return_purchase(ctx, ReturnPurchase(partner, purchase, Money(part, currency),
                                                f"ret-{n}-{i}"))
        assert min(r.points_reversed, r.points_owed, r.points_unrecovered, r.points_refunded) >= 0
        reversed_total += r.points_reversed + r.points_owed + r.points_unrecovered
        refunded_total += r.points_refunded
        assert reversed_total <= earned
        assert refunded_total <= spent
        balance = member_balance(engine, env.clock, member)
        assert (balance.available, balance.debt) == (r.available, r.debt)
    if sum(parts) == amount:
        assert (reversed_total, refunded_total) == (earned, spent)
        before = ledger_snapshot(env.gw)
        try:
            return_purchase(ctx, ReturnPurchase(partner, purchase, Money(1, currency),
                                                f"ret-{n}-more"))
            raise AssertionError("a fully returned purchase accepted another return")
        except NothingToReturn:
            assert ledger_snapshot(env.gw) == before
    report = verify_ledger(engine)
    assert report.ok, report.problems
