"""The settlement worked example (docs/settlement.md, "Worked example"), with exact money.

January: 120 points issued at the grocery, 333 at the electronics shop, 100 redeemed at the
electronics shop, 55 donated to the charity; January is closed. February: half the grocery
purchase and a third of the electronics purchase are returned, a late fuel earn that occurred in
January arrives (an adjustment), and the fuel points expire."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from gateway.settlement.errors import PeriodClosed
from gateway.settlement.model import Figures
from gateway.settlement.service import (
    close_period,
    recompute_closed,
    settlement_report,
    snapshot,
)
from tests.settlement.scenario import FEB, JAN, run_worked_example


def report(gw, period):  # type: ignore[no-untyped-def]
    return settlement_report(gw.services.engine, gw.services.rules, period, "EUR")


def test_january(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    r = report(gw, JAN)
    lines = {p.partner_id: p for p in r.partners}
    assert lines["grocery"].figures == Figures(issued_points=120, issued_minor=30)
    # 333 × 1.1 = 366.3 → CEIL 367 payable; 100 × 1 = 100 receivable; fee 2% of 100 = 2.
    assert lines["electronics"].figures == Figures(
        issued_points=333, issued_minor=367, redeemed_points=100, redeemed_minor=100,
        fee_minor=2)
    # 55 donated points: 20 from the grocery lot (20 × 0.22 = 4.4 → 4) and 35 from the
    # electronics lot (35 × 0.22 = 7.7 → 7): FLOOR per matrix cell, so 11, not 12.
    assert lines["charity"].figures == Figures(
        redeemed_points=55, redeemed_minor=11, donations_points=55, donations_minor=11)
    assert [p.net_minor for p in r.partners] == [11, -269, 0, -30]
    c = r.coalition
    assert (c.issue_income_minor, c.redemption_cost_minor, c.fees_minor, c.net_minor) == (
        397, 111, 2, 288)
    assert c.liability_change_points == 120 + 333 - 100 - 55
    assert [(m.origin, m.redeemer, m.points, m.minor) for m in r.matrix] == [
        ("electronics", "charity", 35, 7), ("grocery", "charity", 20, 4),
        ("grocery", "electronics", 100, 100)]
    assert sum(p.net_minor for p in r.partners) + c.net_minor == 0


def test_february_returns_late_earn_and_expiry(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    r = report(gw, FEB)
    lines = {p.partner_id: p for p in r.partners}
    # Half of g-p1 back: 60 points reversed, priced at the earn's version: 60 × 0.25 = 15.
    assert lines["grocery"].figures == Figures(issue_returns_points=60, issue_returns_minor=15)
    # A third of e-p1 back: 111 reversed (111 × 1.1 = 122.1 → FLOOR 122 credited) and 33 of
    # the 100 points spent on it refunded (33 × 1 = 33 charged back; fee 2% × −33 = −0.66 →
    # CEIL 0).
    assert lines["electronics"].figures == Figures(
        issue_returns_points=111, issue_returns_minor=122, redeem_refunds_points=33,
        redeem_refunds_minor=33)
    assert lines["electronics"].net_minor == 89
    # The late fuel earn (occurred 20 January, recorded 5 February after January closed) is an
    # adjustment naming January: 50 × 0.25 = 12.5 → CEIL 13.
    fuel = lines["fuel"]
    assert fuel.figures == Figures()
    assert [(a.period_id, a.figures) for a in fuel.adjustments] == [
        (JAN.id, Figures(issued_points=50, issued_minor=13))]
    assert fuel.net_minor == -13
    c = r.coalition
    assert (c.issue_income_minor, c.redemption_cost_minor, c.fees_minor, c.net_minor) == (
        -124, -33, 0, -91)
    assert (c.breakage_points, c.breakage_minor) == (50, 12)
    assert c.liability_change_points == -60 - 111 + 33 + 50 - 50
    assert (c.liability_change_minor, c.margin_minor) == (-130, 27)
    assert [(m.origin, m.redeemer, m.points, m.minor) for m in r.matrix] == [
        ("grocery", "electronics", -33, -33)]
    assert sum(p.net_minor for p in r.partners) + c.net_minor == 0


def test_without_a_close_the_late_earn_is_an_ordinary_february_line(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    fuel = report(gw, FEB).line("fuel")
    assert fuel is not None and fuel.adjustments == ()
    assert fuel.figures == Figures(issued_points=50, issued_minor=13)


def test_closed_period_reproduces_its_hash_and_is_immutable(tmp_path: Path) -> None:
    gw, clock = run_worked_example(tmp_path)
    body, digest = snapshot(gw.services.engine, JAN.id)
    again = report(gw, JAN)  # served from the snapshot
    assert again.sha256 == digest and again.canonical_json() == body
    # Re-running the report from the ledger reproduces the stored hash.
    recomputed = recompute_closed(gw.services.engine, gw.services.rules, JAN, "EUR")
    assert recomputed.sha256 == digest and recomputed.canonical_json() == body
    assert recomputed == again
    with pytest.raises(PeriodClosed) as closed:
        close_period(gw.services.engine, gw.services.rules, clock, JAN, "EUR", actor="t")
    assert closed.value.code == "PERIOD_CLOSED" and closed.value.period_id == JAN.id
    with gw.services.engine.connect() as conn:
        for sql in ("UPDATE settlement_periods SET sha256 = 'x'",
                    "DELETE FROM settlement_periods",
                    "UPDATE settlement_snapshots SET body = '{}'",
                    "DELETE FROM settlement_snapshots"):
            with pytest.raises(DatabaseError, match="append-only"):
                conn.execute(text(sql))
            conn.rollback()
    assert snapshot(gw.services.engine, JAN.id) == (body, digest)


def test_overlapping_or_unfinished_periods_cannot_close(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gateway.core.errors import InvalidInput
    from gateway.settlement.model import Period

    gw, clock = run_worked_example(tmp_path)
    rules, engine = gw.services.rules, gw.services.engine
    overlap = Period(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 15, tzinfo=UTC))
    with pytest.raises(PeriodClosed, match="overlaps"):
        close_period(engine, rules, clock, overlap, "EUR", actor="t")
    future = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="in the future"):
        close_period(engine, rules, clock, future, "EUR", actor="t")
    closed = close_period(engine, rules, clock, FEB, "EUR", actor="t")
    assert closed.sha256 == report(gw, FEB).sha256
