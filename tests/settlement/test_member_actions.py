"""Settlement of the member's own actions: a donation pays the charity like a redemption there;
a merge is internal (no figure moves); erasure changes no partner's line, and what it forfeits is
the coalition's breakage, like expiry. Every report balances (build_report refuses otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.erasure import erase_member
from gateway.ledger.member_ops import donate_points, merge_members
from gateway.ledger.verify import verify_ledger
from gateway.settlement.model import Figures, MatrixCell, Period, Report
from gateway.settlement.service import settlement_report
from tests.support.harness import NOW, make_gateway

NOV = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def setup(tmp_path: Path) -> tuple[Gateway, FixedClock, str, str]:
    """Member A: 120 grocery points; member B: 333 electronics points."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    engine, ledger = gw.services.engine, gw.services.ledger
    a = enrol_customer(engine, clock, "grocery", "g-1").member_id
    b = enrol_customer(engine, clock, "electronics", "e-1").member_id
    service.earn_points(ledger, m.EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store",
                                             "g-p1", "k-g-p1"))
    clock.advance(timedelta(minutes=1))
    service.earn_points(ledger, m.EarnPoints("electronics", "e-1", Money(33_300, "EUR"),
                                             "store", "e-p1", "k-e-p1"))
    clock.advance(timedelta(minutes=1))
    return gw, clock, a, b


def report(gw: Gateway) -> Report:
    return settlement_report(gw.services.engine, gw.services.rules, NOV, "EUR")


def test_a_donation_is_settled_as_the_charitys_redemption(tmp_path: Path) -> None:
    gw, _, a, _ = setup(tmp_path)
    before = report(gw)
    donate_points(gw.services.ledger, a, "charity", 55, "d-1")
    after = report(gw)
    charity = after.line("charity")
    assert charity is not None
    assert charity.figures == Figures(redeemed_points=55, redeemed_minor=12,
                                      donations_points=55, donations_minor=12)
    assert after.matrix == (MatrixCell("grocery", "charity", 55, 12),)
    assert [p for p in after.partners if p.partner_id != "charity"] == [
        p for p in before.partners if p.partner_id != "charity"]
    assert after.coalition.redemption_cost_minor == 12
    assert after.coalition.liability_change_points == 120 + 333 - 55
    assert verify_ledger(gw.services.engine).ok


def test_a_merge_changes_no_settlement_figure(tmp_path: Path) -> None:
    gw, clock, a, b = setup(tmp_path)
    before = report(gw)
    merged = merge_members(gw.services.engine, clock, a, b, "test")
    assert (merged.wallet, merged.lots, merged.links_moved) == (333, 1, ("electronics",))
    after = report(gw)
    assert after == before
    assert after.sha256 == before.sha256
    # The merged lot settles with its origin: a redemption at the grocery from the electronics
    # points shows in the matrix as electronics -> grocery.
    clock.advance(timedelta(minutes=1))
    service.redeem_points(gw.services.ledger, m.RedeemPoints(
        "grocery", "g-1", 200, Money(100_000, "UAH"), "r-1"))
    cells = {(c.origin, c.redeemer): c.points for c in report(gw).matrix}
    assert cells == {("grocery", "grocery"): 120, ("electronics", "grocery"): 80}
    assert verify_ledger(gw.services.engine).ok


def test_erasure_keeps_partner_lines_and_forfeits_to_breakage(tmp_path: Path) -> None:
    gw, _, a, _ = setup(tmp_path)
    before = report(gw)
    done = erase_member(gw.services.ledger, a, "FORFEIT", None, "member:test")
    assert (done.forfeited, done.donated, done.links_closed) == (120, 0, 1)
    after = report(gw)
    assert after.partners == before.partners
    assert after.matrix == before.matrix
    assert after.coalition.breakage_points == before.coalition.breakage_points + 120
    assert after.coalition.liability_change_points == before.coalition.liability_change_points \
        - 120
    assert verify_ledger(gw.services.engine).ok


def test_erasure_can_donate_what_is_left(tmp_path: Path) -> None:
    gw, _, a, _ = setup(tmp_path)
    done = erase_member(gw.services.ledger, a, "DONATE", "charity", "member:test")
    assert (done.forfeited, done.donated) == (0, 120)
    charity = report(gw).line("charity")
    assert charity is not None
    assert charity.figures == Figures(redeemed_points=120, redeemed_minor=26,
                                      donations_points=120, donations_minor=26)
    assert verify_ledger(gw.services.engine).ok


def test_erasure_after_expiry_donates_only_what_is_still_valid(tmp_path: Path) -> None:
    gw, clock, a, _ = setup(tmp_path)
    clock.advance(timedelta(days=366))  # the 120 grocery points expired, unswept
    done = erase_member(gw.services.ledger, a, "DONATE", "charity", "member:test")
    assert (done.forfeited, done.donated) == (0, 0)
    late = Period(datetime(2027, 11, 1, tzinfo=UTC), datetime(2027, 12, 1, tzinfo=UTC))
    after = settlement_report(gw.services.engine, gw.services.rules, late, "EUR")
    assert after.coalition.breakage_points == 120  # expired, as without the erasure
    assert verify_ledger(gw.services.engine).ok
