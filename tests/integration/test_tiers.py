"""Tiers on this run's real database (decision 026): qualifying points kept per member and
month in the earn's and the return's transaction, the rolling 12-month window moved with the
clock, returns in the earn's month, a partner-funded tier multiplier posted from the partner's
promotions account, and a member's history costing one row per month, not one per earn.

Demo programme: Gold at 5,000 qualifying points; grocery Gold ×1.25 (coalition) and a 3%
discount card; fuel Gold ×1.1 (fuel pays). Grocery: 1 point per 10.00 UAH; fuel: 1 per litre."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.member_ops import merge_members
from gateway.ledger.model import Earned, EarnPoints, PurchaseLine, Returned, ReturnPurchase
from gateway.ledger.service import earn_points, return_purchase
from gateway.ledger.verify import verify_ledger
from gateway.promotions import tier_sync, tiers
from gateway.rules.campaigns import CampaignBook
from tests.support.harness import NOW, make_gateway
from tests.support.members import link_with_code, member_id_of


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    gateway = make_gateway(tmp_path, clock=FixedClock(NOW))
    programme = gateway.services.ledger.tiers
    assert programme is not None
    tier_sync.sync(gateway.services.engine, programme, actor="test", now=NOW)
    book = gateway.services.ledger.campaigns
    assert isinstance(book, CampaignBook)
    book.reload()
    engine, clock = gateway.services.engine, gateway.services.clock
    enrol_customer(engine, clock, "grocery", "c-1")
    link_with_code(engine, clock, "fuel", "f-1", member_id_of(gateway, "grocery", "c-1"))
    return gateway


def at_grocery(gw: Gateway, minor: int, key: str) -> Earned:
    return earn_points(gw.services.ledger, EarnPoints(
        "grocery", "c-1", Money(minor, "UAH"), "store", key, key))


def at_fuel(gw: Gateway, litres: int, key: str) -> Earned:
    amount = litres * 5000
    return earn_points(gw.services.ledger, EarnPoints(
        "fuel", "f-1", Money(amount, "UAH"), "store", key, key,
        lines=(PurchaseLine(amount, "fuel", litres * 1000),)))


def give_back(gw: Gateway, partner: str, purchase: str, minor: int, key: str) -> Returned:
    return return_purchase(gw.services.ledger,
                           ReturnPurchase(partner, purchase, Money(minor, "UAH"), key))


def status(gw: Gateway) -> tiers.TierStatus:
    found = tiers.member_status(gw.services.engine, gw.services.ledger.tiers, member(gw),
                                gw.services.clock.now())
    assert found is not None
    return found


def member(gw: Gateway) -> str:
    return member_id_of(gw, "grocery", "c-1")


def progress(gw: Gateway) -> dict[int, int]:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        return {int(m): int(p) for m, p in uow.conn.execute(
            select(t.tier_progress.c.month, t.tier_progress.c.points)
            .where(t.tier_progress.c.member_id == member(gw))).all()}


def clock(gw: Gateway) -> FixedClock:
    found = gw.services.clock
    assert isinstance(found, FixedClock)
    return found


def reach_gold(gw: Gateway) -> None:
    assert at_grocery(gw, 4_700_000, "g-big").points == 4700
    assert at_fuel(gw, 300, "f-300").points == 300
    assert progress(gw) == {202611: 5000}


def test_the_rolling_window_drops_old_months_with_the_clock(gw: Gateway) -> None:
    reach_gold(gw)
    clock(gw).set(datetime(2027, 10, 31, 12, 0, tzinfo=UTC))  # 11 months on: still counted
    assert (status(gw).tier.id, status(gw).qualifying_points) == ("gold", 5000)
    late = at_grocery(gw, 120_000, "g-oct")
    assert (late.points, late.bonus_points) == (150, 30)
    assert status(gw).valid_until == datetime(2027, 11, 1, tzinfo=UTC)
    assert progress(gw) == {202611: 5000, 202710: 120}

    clock(gw).set(datetime(2027, 11, 1, 0, 0, tzinfo=UTC))  # November 2026 left the window
    now = status(gw)
    assert (now.tier.id, now.qualifying_points, now.points_to_next) == ("silver", 120, 4880)
    plain = at_grocery(gw, 120_000, "g-nov")
    assert (plain.points, plain.bonus_points, plain.promotions) == (120, 0, ())

    clock(gw).set(datetime(2027, 12, 23, 10, 0, tzinfo=UTC))  # 13 months after the first earns
    assert status(gw).qualifying_points == 240  # October's 120 and November's 120
    assert verify_ledger(gw.services.engine).ok


def test_a_return_takes_base_points_from_the_earns_month(gw: Gateway) -> None:
    reach_gold(gw)
    gold = at_grocery(gw, 120_000, "g-gold")
    assert (gold.points, gold.bonus_points, gold.base_points) == (150, 30, 120)
    assert progress(gw) == {202611: 5120}
    half = give_back(gw, "grocery", "g-gold", 60_000, "r-1")
    # CEIL, as the base: 60 base and 15 bonus points back; only the base stops qualifying.
    assert (half.points_reversed, half.bonus_reversed) == (75, 15)
    assert progress(gw) == {202611: 5060}

    clock(gw).set(datetime(2027, 1, 15, 9, 0, tzinfo=UTC))  # the rest, returned next year
    rest = give_back(gw, "grocery", "g-gold", 60_000, "r-2")
    assert (rest.points_reversed, rest.bonus_reversed) == (75, 15)
    assert progress(gw) == {202611: 5000}  # from November 2026; no January row
    assert status(gw).tier.id == "gold"
    give_back(gw, "fuel", "f-300", 1_500_000, "r-3")
    assert progress(gw) == {202611: 4700}
    assert (status(gw).tier.id, status(gw).points_to_next) == ("silver", 300)
    assert verify_ledger(gw.services.engine).ok


def test_a_partner_funded_tier_multiplier_comes_from_the_partners_account(gw: Gateway) -> None:
    reach_gold(gw)
    filled = at_fuel(gw, 100, "f-gold")
    assert (filled.points, filled.bonus_points) == (110, 10)
    assert [(p.campaign_id, p.funder, p.points, p.explanation) for p in filled.promotions] == [
        ("fuel:tier-gold", "fuel", 10,
         "Gold tier at fuel (fuel:tier-gold v1): ×1.1 on the basket: 100 base × 0.1 → 10 points "
         "→ +10 points")]
    with UnitOfWork(gw.services.engine, write=False) as uow:
        funded = uow.conn.execute(
            select(t.accounts.c.code, t.transfers.c.amount)
            .join(t.accounts, t.accounts.c.id == t.transfers.c.debit_account_id)
            .where(t.transfers.c.operation_id == select(t.operations.c.id).where(
                t.operations.c.purchase_id == "f-gold").scalar_subquery())).all()
    assert sorted((str(c), int(a)) for c, a in funded) == [
        ("partner:fuel:issued", 100), ("partner:fuel:promotions", 10)]
    assert progress(gw) == {202611: 5100}


def test_many_earns_in_a_month_keep_one_row(gw: Gateway) -> None:
    for n in range(25):
        at_grocery(gw, 10_000 + n * 1000, f"g-{n}")
    # 10.00 UAH + n: floor(1 + n/10) points each; 25 earns, one row.
    expected = sum((10_000 + n * 1000) // 1000 for n in range(25))
    assert progress(gw) == {202611: expected}
    assert status(gw).qualifying_points == expected


def test_no_programme_means_no_tier_and_nothing_kept(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    gateway.services.ledger.tiers = None
    enrol_customer(gateway.services.engine, gateway.services.clock, "grocery", "c-1")
    earned = earn_points(gateway.services.ledger, EarnPoints(
        "grocery", "c-1", Money(120_000, "UAH"), "store", "k", "k"))
    assert earned.points == 120
    with UnitOfWork(gateway.services.engine, write=False) as uow:
        assert uow.conn.execute(select(t.tier_progress)).all() == []
    assert tiers.member_status(gateway.services.engine, None, "m", NOW) is None


def test_a_merge_brings_the_absorbed_members_qualifying_points(gw: Gateway) -> None:
    # c-1 (grocery, the survivor) earns 4,700; a second member, f-2 at fuel, earns 300: each
    # alone is Silver, the one person is Gold (5,000) once the accounts are merged.
    assert at_grocery(gw, 4_700_000, "g-big").points == 4700
    engine, clock_ = gw.services.engine, gw.services.clock
    enrol_customer(engine, clock_, "fuel", "f-2")
    absorbed = member_id_of(gw, "fuel", "f-2")
    amount = 300 * 5000
    earned = earn_points(gw.services.ledger, EarnPoints(
        "fuel", "f-2", Money(amount, "UAH"), "store", "f2-300", "f2-300",
        lines=(PurchaseLine(amount, "fuel", 300 * 1000),)))
    assert earned.points == 300
    assert status(gw).tier.id == "silver"

    merge_members(engine, clock_, member(gw), absorbed, "test")
    assert progress(gw) == {202611: 5000}
    assert (status(gw).tier.id, status(gw).qualifying_points) == ("gold", 5000)
    with UnitOfWork(engine, write=False) as uow:
        left = uow.conn.execute(select(t.tier_progress.c.points).where(
            t.tier_progress.c.member_id == absorbed)).scalars().all()
    assert list(left) == [0]

    # Returning the absorbed member's fuel purchase now takes the points off the survivor.
    give_back(gw, "fuel", "f2-300", amount, "r-f2")
    assert progress(gw) == {202611: 4700}
    assert status(gw).tier.id == "silver"
    assert verify_ledger(engine).ok
