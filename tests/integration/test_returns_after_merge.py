"""Returns after a merge (issue 10, round 2): a purchase earned and partly paid with points by
an account that has since been merged away is returned against the surviving member, through
any chain of merges. The reversal comes out of the survivor's wallet (from the copy of the very
lot the purchase earned), the refund goes back into the survivor's copy of the lot the spend
consumed (same origin and expiry, so settlement stays true), the absorbed account stays empty,
the total is preserved and ``verify`` is clean. Before the fix the return took from the empty
absorbed account (recording a debt there) and refunded into it: the points were stranded."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import InvalidInput
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger import holds, service
from gateway.ledger import model as m
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.member_ops import merge_members
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.verify import verify_ledger
from tests.support.harness import NOW, make_gateway


def balances(gw: Gateway, member_id: str) -> dict[str, int]:
    with gw.services.engine.connect() as conn:
        found = LedgerRepository(conn).member_balances(member_id)
    return {str(k.value): v for k, v in found.items() if v}


def live(gw: Gateway, member_id: str) -> Counter[tuple[str, datetime]]:
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.lots.c.origin_partner_id, t.lots.c.expires_at,
                                   t.lots.c.remaining)
                            .where(t.lots.c.member_id == member_id, t.lots.c.remaining > 0))
        found: Counter[tuple[str, datetime]] = Counter()
        for origin, expires, remaining in rows:
            found[(str(origin), expires)] += int(remaining)
    return found


def setup(tmp_path: Path) -> tuple[Gateway, FixedClock, str, str]:
    """A earned 120 (g-a); B earned 100 (g-old), then 200 on g-p2 and paid 50 points towards
    g-p2 (taken from the g-old lot, the soonest to expire); B is then merged into A."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    engine, ledger = gw.services.engine, gw.services.ledger
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = enrol_customer(engine, clock, "grocery", "g-b").member_id
    for customer, purchase, amount in (("g-a", "g-a1", 120_000), ("g-b", "g-old", 100_000),
                                       ("g-b", "g-p2", 200_000)):
        clock.advance(timedelta(minutes=1))
        service.earn_points(ledger, m.EarnPoints("grocery", customer, Money(amount, "UAH"),
                                                 "store", purchase, f"k-{purchase}"))
    clock.advance(timedelta(minutes=1))
    service.redeem_points(ledger, m.RedeemPoints("grocery", "g-b", 50, Money(200_000, "UAH"),
                                                 "k-r-p2", purchase_id="g-p2"))
    clock.advance(timedelta(minutes=1))
    merge_members(engine, clock, a, b, "test")
    clock.advance(timedelta(minutes=1))
    return gw, clock, a, b


def test_a_return_after_a_merge_reverses_and_refunds_on_the_survivor(tmp_path: Path) -> None:
    gw, _, a, b = setup(tmp_path)
    lots_before = live(gw, a)
    assert balances(gw, a) == {"wallet": 120 + 50 + 200}
    returned = service.return_purchase(gw.services.ledger, m.ReturnPurchase(
        "grocery", "g-p2", Money(200_000, "UAH"), "k-ret-p2"))
    assert (returned.points_reversed, returned.points_owed, returned.points_unrecovered,
            returned.points_refunded, returned.available, returned.debt) == (200, 0, 0, 50,
                                                                            220, 0)
    assert balances(gw, a) == {"wallet": 220}
    assert balances(gw, b) == {}
    # The 200 left the g-p2 lot's copy, the 50 went back into the g-old lot's copy.
    expiries = sorted(lots_before)
    assert len(expiries) == 3
    old, p2 = expiries[1], expiries[2]
    assert live(gw, a) == lots_before - Counter({p2: 200}) + Counter({old: 50})
    assert live(gw, b) == Counter()
    with gw.services.engine.connect() as conn:
        recorded = conn.execute(select(t.operations.c.member_id)
                                .where(t.operations.c.kind == "return")).scalars().all()
    assert recorded == [a]
    assert verify_ledger(gw.services.engine).ok


def test_a_partial_return_then_the_rest_after_a_second_merge(tmp_path: Path) -> None:
    gw, clock, a, b = setup(tmp_path)
    ledger = gw.services.ledger
    half = service.return_purchase(ledger, m.ReturnPurchase(
        "grocery", "g-p2", Money(100_000, "UAH"), "k-ret-1"))
    assert (half.points_reversed, half.points_refunded, half.available) == (100, 25, 295)
    c = enrol_customer(gw.services.engine, clock, "fuel", "f-c").member_id
    merge_members(gw.services.engine, clock, c, a, "test")  # C absorbs A (which absorbed B)
    clock.advance(timedelta(minutes=1))
    rest = service.return_purchase(ledger, m.ReturnPurchase(
        "grocery", "g-p2", Money(100_000, "UAH"), "k-ret-2"))
    assert (rest.points_reversed, rest.points_owed, rest.points_refunded, rest.available) == (
        100, 0, 25, 220)
    assert balances(gw, c) == {"wallet": 220}
    assert balances(gw, a) == {} and balances(gw, b) == {}
    assert sum(live(gw, c).values()) == 220
    assert verify_ledger(gw.services.engine).ok


def test_a_return_with_nothing_merged_is_unchanged(tmp_path: Path) -> None:
    """The lineage lookups cost a return without merges nothing in behaviour."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    ledger = gw.services.ledger
    a = enrol_customer(gw.services.engine, clock, "grocery", "g-a").member_id
    service.earn_points(ledger, m.EarnPoints("grocery", "g-a", Money(200_000, "UAH"), "store",
                                             "p", "k-p"))
    service.redeem_points(ledger, m.RedeemPoints("grocery", "g-a", 150, Money(200_000, "UAH"),
                                                 "k-r", purchase_id="p"))
    returned = service.return_purchase(ledger, m.ReturnPurchase(
        "grocery", "p", Money(200_000, "UAH"), "k-ret"))
    assert (returned.points_reversed, returned.points_owed, returned.points_refunded,
            returned.available, returned.debt) == (200, 0, 150, 0, 0)
    assert balances(gw, a) == {}
    assert verify_ledger(gw.services.engine).ok


def test_a_captured_hold_is_refunded_to_the_survivor(tmp_path: Path) -> None:
    """Paid by a hold captured before the merge: the refund follows the authorisation's lots.
    A hold still open refuses the merge, so a capture never meets a merged member."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    engine, ledger = gw.services.engine, gw.services.ledger
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = enrol_customer(engine, clock, "grocery", "g-b").member_id
    service.earn_points(ledger, m.EarnPoints("grocery", "g-b", Money(300_000, "UAH"), "store",
                                             "p", "k-p"))
    placed = holds.authorise_redemption(ledger, m.AuthoriseRedemption(
        "grocery", "g-b", 80, Money(300_000, "UAH"), "k-a", purchase_id="p"))
    with pytest.raises(InvalidInput) as refused:
        merge_members(engine, clock, a, b, "test")
    assert refused.value.field == "cardNumber"
    assert balances(gw, b) == {"wallet": 220, "held": 80} and balances(gw, a) == {}
    holds.capture_redemption(ledger, m.CaptureRedemption("grocery", placed.hold_id, "k-c", 60))
    merge_members(engine, clock, a, b, "test")
    assert balances(gw, a) == {"wallet": 240}
    returned = service.return_purchase(ledger, m.ReturnPurchase(
        "grocery", "p", Money(150_000, "UAH"), "k-ret"))
    assert (returned.points_reversed, returned.points_refunded, returned.available) == (
        150, 30, 120)
    assert balances(gw, a) == {"wallet": 120} and balances(gw, b) == {}
    assert sum(live(gw, a).values()) == 120
    assert verify_ledger(gw.services.engine).ok
