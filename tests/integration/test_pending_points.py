"""Pending points: a partner with a return window credits earned points to the member's pending
account; they become spendable (and repay debt first) once the window has passed, and a return
inside the window takes them back from pending."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.errors import InsufficientPoints
from gateway.core.money import Money
from gateway.ledger import service
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import AuthoriseRedemption, EarnPoints, RedeemPoints, ReturnPurchase
from gateway.ledger.verify import verify_ledger
from gateway.settings import Settings
from tests.support.catalog import catalog_with_pending_days
from tests.support.harness import NOW
from tests.support.members import link_with_code


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Gateway, FixedClock, str]:
    catalog = catalog_with_pending_days(tmp_path)
    clock = FixedClock(NOW)
    gw = build(Settings(database_url=f"sqlite:///{tmp_path / 'g.db'}", catalog_dir=catalog),
               clock=clock)
    member = enrol_customer(gw.services.engine, clock, "electronics", "e-1").member_id
    link_with_code(gw.services.engine, clock, "grocery", "g-1", member)
    return gw, clock, member


def earn(gw: Gateway, partner: str, customer: str, minor: int, currency: str, key: str) -> int:
    cmd = EarnPoints(partner, customer, Money(minor, currency), "store", f"p-{key}", key)
    return service.earn_points(gw.services.ledger, cmd).points


def test_pending_points_release_after_window(setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    points = earn(gw, "electronics", "e-1", 30000, "EUR", "k1")
    assert points > 0
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.pending) == (0, points)
    with pytest.raises(InsufficientPoints):
        service.redeem_points(gw.services.ledger, RedeemPoints(
            "electronics", "e-1", points, Money(30000, "EUR"), "r1"))
    clock.advance(timedelta(days=14))
    earn(gw, "grocery", "g-1", 1000, "UAH", "k2")  # any write sweeps the member: release
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.pending) == (points + 1, 0)
    assert verify_ledger(gw.services.engine).ok


def test_return_inside_window_takes_from_pending(setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    points = earn(gw, "electronics", "e-1", 30000, "EUR", "k1")
    returned = service.return_purchase(gw.services.ledger, ReturnPurchase(
        "electronics", "p-k1", Money(30000, "EUR"), "ret"))
    assert (returned.points_reversed, returned.points_owed) == (points, 0)
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.pending, balance.debt) == (0, 0, 0)
    clock.advance(timedelta(days=15))
    earn(gw, "grocery", "g-1", 1000, "UAH", "k2")
    assert member_balance(gw.services.engine, clock, member).available == 1
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems


def test_released_points_repay_debt_first(setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    earn(gw, "grocery", "g-1", 100000, "UAH", "g1")  # 100 points, spendable now
    service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 50, Money(100000, "UAH"), "r1"))
    service.return_purchase(gw.services.ledger, ReturnPurchase(
        "grocery", "p-g1", Money(100000, "UAH"), "ret"))  # 100 back: 50 wallet + 50 debt
    assert member_balance(gw.services.engine, clock, member).debt == 50
    pending = earn(gw, "electronics", "e-1", 30000, "EUR", "e1")
    assert member_balance(gw.services.engine, clock, member).debt == 50  # not yet repaid
    clock.advance(timedelta(days=14))
    earn(gw, "grocery", "g-1", 1000, "UAH", "g2")  # 1 point, repays 1 of the debt; release too
    balance = member_balance(gw.services.engine, clock, member)
    assert balance.debt == max(0, 50 - pending - 1)
    assert balance.available == max(0, pending + 1 - 50)
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems


def test_balance_read_shows_what_the_next_write_will_see(
    setup: tuple[Gateway, FixedClock, str],
) -> None:
    """Reads do not write: a balance read between a due time and the next sweep must already
    leave out expired points, count matured pending points, and give back lapsed holds."""
    from gateway.ledger import holds

    gw, clock, member = setup
    earn(gw, "grocery", "g-1", 100000, "UAH", "g1")  # 100 available, expires in 365 days
    pending = earn(gw, "electronics", "e-1", 30000, "EUR", "e1")  # pending for 14 days
    hold = holds.authorise_redemption(gw.services.ledger, AuthoriseRedemption(
        "grocery", "g-1", 60, Money(100000, "UAH"), "h1"))
    assert hold.points == 60
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.held, balance.pending) == (40, 60, pending)

    clock.advance(timedelta(days=14))  # hold lapsed, pending matured; nothing swept yet
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.held, balance.pending) == (100 + pending, 0, 0)

    # Both lots (earned the same instant, 365-day expiry) are past expiry, the electronics
    # one still flagged pending because no write has swept it: all of it is gone.
    clock.advance(timedelta(days=352))
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.held, balance.pending) == (0, 0, 0)

    earn(gw, "grocery", "g-1", 100000, "UAH", "g2")  # sweeps, then earns 100 (rule v2)
    after = member_balance(gw.services.engine, clock, member)
    assert (after.available, after.held, after.pending, after.debt) == (100, 0, 0, 0)
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems


def test_pending_lot_released_after_its_expiry_does_not_repay_debt(
    setup: tuple[Gateway, FixedClock, str],
) -> None:
    """A pending lot first swept after its expiry is released and expired in one sweep; it
    must not be used to repay debt (those points no longer exist to spend)."""
    gw, clock, member = setup
    earn(gw, "grocery", "g-1", 100000, "UAH", "g1")
    service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 50, Money(100000, "UAH"), "r1"))
    service.return_purchase(gw.services.ledger, ReturnPurchase(
        "grocery", "p-g1", Money(100000, "UAH"), "ret"))  # debt 50
    pending = earn(gw, "electronics", "e-1", 30000, "EUR", "e1")
    clock.advance(timedelta(days=400))
    assert member_balance(gw.services.engine, clock, member).debt == 50
    earn(gw, "grocery", "g-1", 100000, "UAH", "g2")  # 100 points: repays the 50 debt
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.pending, balance.debt) == (50, 0, 0)
    assert pending > 0
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems
