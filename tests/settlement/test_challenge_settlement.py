"""A challenge's bonus settles like any promotion (issue 13, decision 032), on this run's
backend, with no settlement code of its own. November 2026:

  grocery 1,000.00 UAH (100 points) and 100.00 UAH (10), fuel 400.00 UAH (20), electronics
  100.00 EUR (100): the coalition's "3 brands this month" completes at the electronics shop
  (150 points, coalition-funded), the grocery's own "2 purchases this month" at the grocery's
  second purchase (40 points, grocery-funded). Then the second grocery purchase comes back:
  below the grocery's target again, its 40 bonus points are reversed.

In EUR minor units: the grocery's bonus is priced at its rule (0.25 a point issued): it pays
CEIL(40 x 0.25) = 10 and is credited FLOOR(40 x 0.25) = 10 for the reversal. The coalition's
bonus is priced at the electronics shop's rule (1.1 a point): 150 -> 165, its own cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.promotions import funding
from gateway.settlement import exposure
from gateway.settlement.model import FunderLine, Period
from gateway.settlement.service import settlement_report
from tests.support.challenges import Drain, bonus_operations, define
from tests.support.harness import make_gateway
from tests.support.members import link_with_code

NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_challenge_bonuses_show_on_their_funders_promotion_lines(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 10, tzinfo=UTC))
    gw = make_gateway(tmp_path, clock=clock)
    s = gw.services
    exposure.set_terms(s.engine, s.clock, "grocery", mode="prepaid", policy=None,
                       limit_points=None, actor="finance:ana")
    exposure.top_up(s.engine, s.clock, "grocery", 1_000, actor="finance:ana")
    define(gw, id="three-brands", name="3 brands", badge="explorer", bonus_points=150,
           window="month", count="brands", target=3)
    define(gw, "grocery", id="two-visits", name="2 visits", badge="regular", bonus_points=40,
           window="month", count="purchases", target=2)
    drain = Drain(gw, clock)
    member = enrol_customer(s.engine, clock, "grocery", "g-1").member_id
    link_with_code(s.engine, clock, "fuel", "f-1", member)
    link_with_code(s.engine, clock, "electronics", "e-1", member)

    def earn(partner: str, customer: str, money: Money, purchase: str) -> None:
        service.earn_points(s.ledger, m.EarnPoints(partner, customer, money, "store", purchase,
                                                   f"k-{purchase}"))

    earn("grocery", "g-1", Money(100_000, "UAH"), "g-p1")
    earn("fuel", "f-1", Money(40_000, "UAH"), "f-p1")
    clock.advance(timedelta(hours=1))
    earn("electronics", "e-1", Money(10_000, "EUR"), "e-p1")
    earn("grocery", "g-1", Money(10_000, "UAH"), "g-p2")
    drain()
    assert [(o["kind"], o["points"], o["partner_id"]) for o in bonus_operations(gw, member)] == [
        ("bonus", 150, "electronics"), ("bonus", 40, "grocery")]
    clock.advance(timedelta(days=3))
    service.return_purchase(s.ledger, m.ReturnPurchase("grocery", "g-p2", Money(10_000, "UAH"),
                                                       "ret-1"))
    drain()
    assert [o["points"] for o in bonus_operations(gw, member)] == [150, 40, -40]
    # docs/challenges.md's worked example: 420 before the return, 370 after.
    assert member_balance(s.engine, clock, member).available == 420 - 10 - 40
    with s.engine.connect() as conn:
        counted = funding.read(conn, "grocery")
    assert counted is not None and (counted.issued_points, counted.reversed_points) == (40, 40)

    clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    report = settlement_report(s.engine, s.rules, NOVEMBER, "EUR")
    assert report.funders() == (FunderLine("grocery", 40, 40, 10, 10),
                                FunderLine("coalition", 150, 0, 165, 0))
    lines = {p.partner_id: p for p in report.partners}
    g = lines["grocery"].figures
    assert (g.promotion_points, g.promotion_minor, g.promotion_returns_points,
            g.promotion_returns_minor) == (40, 10, 40, 10)
    c = report.coalition
    assert (c.bonus_points, c.bonus_minor, c.bonus_returns_points) == (150, 165, 0)
    assert sum(p.net_minor for p in report.partners) + c.net_minor == 0
