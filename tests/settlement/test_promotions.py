"""Promotions in settlement (issue 12): every bonus point is a liability of its funder.

January 2026, on this run's backend. The electronics shop (1 point per 1.00 EUR, 1.1 minor per
point issued) and the grocery (1 point per 10.00 UAH, 0.25 minor per point) each sell once; the
electronics shop funds 50 bonus points on its sale, the coalition 30; the grocery funds 7. Then
20 of the shop's bonus, 10 of the coalition's and 3 of the grocery's are reversed by returns.

  electronics: issued 100 -> 110; promotions 50 -> 55, reversed 20 -> 22: net -110 - 33 = -143
  grocery:     issued 120 -> 30;  promotions 7 -> CEIL 1.75 = 2, reversed 3 -> FLOOR 0.75 = 0:
               net -30 - 2 = -32
  coalition:   issue income 140 + promotion income 35 = 175 (sums with the partners to 0);
               its own bonus 30 -> 33, reversed 10 -> 11: cost 22 (a memo)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from gateway.settlement.html import report_html
from gateway.settlement.model import Figures, FunderLine, Period, Report
from gateway.settlement.render import report_csv, report_text
from gateway.settlement.service import (
    _snapshot_transaction,
    build_report,
    check_rollups,
    close_period,
    recompute_closed,
    roll_up,
    settlement_report,
)
from tests.settlement.scenario import FEB as WORKED_FEB
from tests.settlement.scenario import JAN as WORKED_JAN
from tests.settlement.scenario import run_worked_example, short_expiry_catalog
from tests.support import harness
from tests.support.bonus_postings import post_bonus, return_bonus
from tests.support.harness import track
from tests.support.members import link_with_code

JAN = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


def _gateway(tmp: Path, clock: FixedClock) -> Gateway:
    gw = build(harness.test_settings(tmp, catalog_dir=short_expiry_catalog(tmp)), clock=clock)
    track(gw.services.engine)
    return gw


def _january(tmp: Path) -> tuple[Gateway, FixedClock]:
    clock = FixedClock(datetime(2026, 1, 10, 10, tzinfo=UTC))
    gw = _gateway(tmp, clock)
    ledger, engine = gw.services.ledger, gw.services.engine
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    link_with_code(engine, clock, "electronics", "e-1", member)
    service.earn_points(ledger, m.EarnPoints("electronics", "e-1", Money(10_000, "EUR"), "store",
                                             "e-p1", "e-k1"))
    shop = post_bonus(ledger, "electronics", member, "electronics", 50, "e-bonus")
    ours = post_bonus(ledger, "electronics", member, "coalition", 30, "e-welcome")
    clock.advance(timedelta(days=1))
    service.earn_points(ledger, m.EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store",
                                             "g-p1", "g-k1"))
    grocer = post_bonus(ledger, "grocery", member, "grocery", 7, "g-bonus")
    clock.advance(timedelta(days=2))
    assert return_bonus(ledger, "electronics", member, shop, "electronics", 20, "e-ret") == 20
    assert return_bonus(ledger, "electronics", member, ours, "coalition", 10, "e-ret-c") == 10
    assert return_bonus(ledger, "grocery", member, grocer, "grocery", 3, "g-ret") == 3
    clock.set(datetime(2026, 2, 2, 10, tzinfo=UTC))
    return gw, clock


def _check(r: Report) -> None:
    lines = {p.partner_id: p for p in r.partners}
    assert lines["electronics"].figures == Figures(
        issued_points=100, issued_minor=110, promotion_points=50, promotion_minor=55,
        promotion_returns_points=20, promotion_returns_minor=22)
    assert lines["grocery"].figures == Figures(
        issued_points=120, issued_minor=30, promotion_points=7, promotion_minor=2,
        promotion_returns_points=3, promotion_returns_minor=0)
    assert (lines["electronics"].net_minor, lines["grocery"].net_minor) == (-143, -32)
    c = r.coalition
    assert (c.issue_income_minor, c.promotion_income_minor, c.net_minor) == (140, 35, 175)
    assert (c.bonus_points, c.bonus_returns_points, c.bonus_minor, c.bonus_returns_minor,
            c.bonus_cost_minor) == (30, 10, 33, 11, 22)
    assert c.liability_change_points == 100 + 50 + 30 + 120 + 7 - 20 - 10 - 3
    # Outstanding by origin: electronics 100 + 30 + 20 = 150 x 1.1; grocery 124 x 0.25 = 31.
    assert (c.liability_change_minor, c.margin_minor) == (165 + 31, 175 - 196)
    assert sum(p.net_minor for p in r.partners) + c.net_minor == 0
    assert r.funders() == (FunderLine("electronics", 50, 20, 55, 22),
                           FunderLine("grocery", 7, 3, 2, 0),
                           FunderLine("coalition", 30, 10, 33, 11))


def test_promotion_lines_per_funder_balance(tmp_path: Path) -> None:
    gw, _ = _january(tmp_path)
    engine, rules = gw.services.engine, gw.services.rules
    report = settlement_report(engine, rules, JAN, "EUR")
    _check(report)
    text = report_text(report)
    assert "funder" in text and "coalition (own)" in text
    csv_lines = report_csv(report).splitlines()
    header = csv_lines[0].split(",")
    shop = dict(zip(header, next(x for x in csv_lines if x.startswith("electronics,"))
                    .split(","), strict=True))
    assert (shop["promotion_points"], shop["promotion_minor"], shop["net_minor"]) == (
        "50", "55", "-143")
    assert csv_lines[-1].endswith(",175,Coalition,30,33,10,11")
    # A partner-bound view shows its own promotion line only.
    own = report_text(report, "grocery")
    assert "coalition (own)" not in own and "Grocery" in own
    page = report_html(report, plotly_src="/static/plotly.js")
    table = page.split('<table id="promotion-lines">')[1].split("</table>")[0]
    assert table.count('<tr class="funder">') == 3 and "<td>0.33</td>" in table
    assert '<table id="promotion-lines">' not in report_html(report, "fuel",
                                                               plotly_src="/static/plotly.js")


def test_rollups_and_closed_snapshot_carry_promotions(tmp_path: Path) -> None:
    gw, clock = _january(tmp_path)
    engine, rules = gw.services.engine, gw.services.rules
    assert roll_up(engine, clock, JAN) == 31
    with _snapshot_transaction(engine, write=False) as conn:
        stored = build_report(conn, rules, JAN, "EUR")
        rows = build_report(conn, rules, JAN, "EUR", stored=False)
    _check(stored)
    assert stored.canonical_json() == rows.canonical_json()
    assert check_rollups(engine) == []
    closed = close_period(engine, rules, clock, JAN, "EUR", actor="test")
    frozen = settlement_report(engine, rules, JAN, "EUR")
    _check(frozen)
    assert frozen.sha256 == closed.sha256
    assert recompute_closed(engine, rules, JAN, "EUR").sha256 == closed.sha256
    # The day of the coalition's reversal holds a flow row crediting coalition:bonus.
    with engine.connect() as conn:
        kinds = {r.kind for r in conn.execute(t.settlement_rollups.select())}
    assert {"earn", "return"} <= kinds


def test_a_report_without_promotions_hashes_as_before(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 1, 10, 10, tzinfo=UTC))
    gw = _gateway(tmp_path, clock)
    enrol_customer(gw.services.engine, clock, "grocery", "g-1")
    service.earn_points(gw.services.ledger, m.EarnPoints(
        "grocery", "g-1", Money(120_000, "UAH"), "store", "g-p1", "g-k1"))
    clock.set(datetime(2026, 2, 2, tzinfo=UTC))
    report = settlement_report(gw.services.engine, gw.services.rules, JAN, "EUR")
    body = report.canonical_json()
    assert "promotion" not in body and "bonus_minor" not in body
    assert Report.from_canonical(body).canonical_json() == body
    assert report.funders() == ()


# The worked example's reports as the code before promotions hashed them (measured on commit
# 421adf2): a snapshot closed then must still reproduce its hash.
BEFORE_PROMOTIONS = {
    "20260101T000000Z-20260201T000000Z":
        "c7284f6cf91b7ca448fe2d09a80edc13d67c462864580553843a39555a249f09",
    "20260201T000000Z-20260301T000000Z":
        "64a127ba6c3a05025dca9a623144531d7fd1082e07d397aa161665ba11dd01ad",
}


def test_the_worked_example_hashes_as_before_promotions(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    for period in (WORKED_JAN, WORKED_FEB):
        report = settlement_report(gw.services.engine, gw.services.rules, period, "EUR")
        assert report.sha256 == BEFORE_PROMOTIONS[period.id]
