"""Effectiveness reports (issue 13, decision 034) on this run's real database.

* A campaign's holdout: the engine holds out exactly the members ``held_out`` names, lists the
  skip (reason ``holdout``) in the earn's answer, writes one marker row each, and the
  effectiveness report counts both groups, the points, the cost and the spend exactly.
* The programme report on a small worked scenario (two months, two brands, a redemption and an
  expiry): every figure exact.
* Uplift on seeded spend with a known effect (treated spend 20 % more by construction): the 95 %
  Welch interval contains the true effect and excludes 0; with no effect it contains 0.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.expiry import run_expiry
from gateway.ledger.model import EarnPoints, RedeemPoints
from gateway.ledger.service import earn_points, redeem_points
from gateway.promotions.holdout import held_out
from gateway.promotions.repository import HOLDOUT_MARKER
from gateway.reports.effectiveness import effectiveness
from gateway.reports.items import CampaignSource
from gateway.reports.programme import programme_report
from gateway.reports.stats import decimal
from gateway.settlement.model import Period
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import NOW, make_gateway
from tests.support.members import card_number_of

PRICE = Fraction(1, 4)  # grocery's settlement price per point issued (partners/catalog)


def _earn(gw: Gateway, customer: str, minor: int, key: str, *, partner: str = "grocery",
          card: str | None = None) -> object:
    return earn_points(gw.services.ledger, EarnPoints(
        partner, None if card else customer, Money(minor, "UAH"), "store", key, key,
        card_number=card))


def test_holdout_members_are_skipped_marked_and_compared(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    (campaign,) = publish(gw, replace(bonus_campaign("grocery:spring", 10), holdout_percent=50))
    members = {}
    for n in range(24):
        members[f"c-{n}"] = enrol_customer(gw.services.engine, gw.services.clock, "grocery",
                                           f"c-{n}").member_id
    held = {c for c, m in members.items() if held_out("grocery:spring", m, 50)}
    assert 0 < len(held) < 24  # 24 members at 50 %: both groups (fixed by the member ids)
    for n, customer in enumerate(members):
        done = _earn(gw, customer, 120_000 + 1000 * n, f"k-{n}")  # 120.00 UAH and up
        skipped = [s.reason for s in done.skipped]  # type: ignore[attr-defined]
        if customer in held:
            assert done.bonus_points == 0 and skipped == ["holdout"]  # type: ignore[attr-defined]
            assert any("holdout group" in line for line in done.explanation)  # type: ignore[attr-defined]
        else:
            assert done.bonus_points == 10 and skipped == []  # type: ignore[attr-defined]
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.promotion_awards.c.member_id, t.promotion_awards.c.points,
                                   t.promotion_awards.c.rewards, t.promotion_awards.c.reward_code)
                            ).all()
        counter = conn.execute(select(t.campaign_counters.c.points)).scalar_one()
    markers = {m for m, p, r, code in rows if code == HOLDOUT_MARKER and p == 0 and r == 0}
    assert markers == {members[c] for c in held}
    assert counter == 0  # a holdout consumes no budget (and an unbudgeted campaign no counter)
    treated = 24 - len(held)
    month = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    parallel = programme_report(gw.services.engine, month)  # the member pass in four parts
    assert parallel == programme_report(gw.services.engine, month, workers=1)
    assert (parallel.active_members, parallel.earned_points) == (24, sum(
        120 + n for n in range(24)) + 10 * treated)  # 120.00 UAH + n: 120 + n points
    source = CampaignSource()
    with gw.services.engine.connect() as conn:
        item = source.item(conn, campaign.id)
    assert item is not None and item.holdout_percent == 50
    report = effectiveness(gw.services.engine, source, item, gw.services.rules, "EUR",
                           NOW + timedelta(days=1))
    assert (report.members_reached, report.rewards, report.points_issued) == (
        treated, treated, 10 * treated)
    assert report.cost_minor == -(-10 * treated // 4)  # 0.25 EUR a point, CEIL
    assert (report.treated_members, report.holdout_members, report.excluded_members) == (
        treated, len(held), 0)
    (uplift,) = report.uplift
    spends = {c: 120_000 + 1000 * n for n, c in enumerate(members)}
    t_sum = sum(v for c, v in spends.items() if c not in held)
    h_sum = sum(v for c, v in spends.items() if c in held)
    assert (uplift.currency, uplift.treated.n, uplift.treated.total) == ("UAH", treated, t_sum)
    assert (uplift.holdout.n, uplift.holdout.total) == (len(held), h_sum)
    assert uplift.treated.squares == sum(v * v for c, v in spends.items() if c not in held)
    expected = Fraction(t_sum, treated) - Fraction(h_sum, len(held))
    assert uplift.interval.difference == decimal(expected)  # exact, rounded once at 0.01
    assert uplift.interval.low is not None and uplift.interval.high is not None
    assert uplift.interval.low < uplift.interval.difference < uplift.interval.high


def test_programme_report_worked_example(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 10, 5, 12, 0, tzinfo=UTC))
    gw = make_gateway(tmp_path, clock=clock)
    engine = gw.services.engine
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    enrol_customer(engine, clock, "grocery", "g-b")
    assert _earn(gw, "g-a", 120_000, "a1").points == 120  # type: ignore[attr-defined]
    assert _earn(gw, "g-b", 50_000, "b1").points == 50  # type: ignore[attr-defined]
    clock.set(datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    fuel = _earn(gw, "", 40_000, "a2", partner="fuel", card=card_number_of(gw, a))
    fuel_points = fuel.points  # type: ignore[attr-defined]
    assert fuel_points > 0
    redeem_points(gw.services.ledger, RedeemPoints("grocery", "g-a", 50, Money(10_000, "UAH"),
                                                   "r1", purchase_id="r1"))
    clock.set(datetime(2026, 11, 12, 9, 0, tzinfo=UTC))
    enrol_customer(engine, clock, "grocery", "g-c")
    assert _earn(gw, "g-c", 30_000, "c1").points == 30  # type: ignore[attr-defined]
    november = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    report = programme_report(engine, november)
    assert programme_report(engine, november, workers=1) == report  # one connection, same
    assert (report.active_members, report.cross_brand_members) == (2, 1)  # a (2 brands), c
    flows = {f.partner_id: (f.earned_points, f.burned_points, f.expired_points)
             for f in report.flows}
    assert flows == {"grocery": (30, 50, 0), "fuel": (fuel_points, 0, 0)}
    assert report.earn_burn_ratio == Fraction(30 + fuel_points, 50)
    assert report.breakage == 0
    # a's redemption took the oldest-expiring lot (grocery): 120 - 50 + 50 + 30 remain there.
    assert {x.partner_id: x.points for x in report.liability} == {
        "grocery": 150, "fuel": fuel_points}
    assert (report.held_points, report.debt_points) == (0, 0)
    assert report.liability_points == 150 + fuel_points
    assert [(c.month, c.members, c.active) for c in report.cohorts] == [
        ("2026-10", 2, (2, 1)), ("2026-11", 1, (1,))]
    # A year on, everything left expires: breakage over the whole span is expired / issued.
    clock.set(datetime(2027, 12, 15, tzinfo=UTC))
    run_expiry(gw.services.ledger)
    span = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    later = programme_report(engine, span)
    assert programme_report(engine, span, workers=1) == later
    issued = 120 + 50 + fuel_points + 30
    assert later.expired_points == issued - 50
    assert later.breakage == Fraction(issued - 50, issued)
    assert later.liability == () and later.liability_points == 0
    assert later.active_members == 3  # the members' own earns and redeem; expiry is not activity


def _seed_spend(gw: Gateway, campaign_id: str, effect: Fraction, n: int,
                seed: int) -> None:
    """``n`` members per group: a treated one got an award, a held-out one a marker; each
    spent ``base`` (a multiple of 5: 50,000 to 150,000 minor) in one earn, a treated one
    ``base × (1 + effect)``. Rows written directly (the report reads them as any earn's)."""
    rng = random.Random(seed)
    rule = gw.services.rules.rule_at("grocery", NOW).version
    at = NOW - timedelta(days=1)
    members, ops, awards = [], [], []
    for i in range(2 * n):
        mid, op = f"m-{seed}-{i}", f"op-{seed}-{i}"
        treated = i % 2 == 0
        base = 5 * rng.randint(10_000, 30_000)
        spend = int(base * (1 + effect)) if treated else base
        members.append({"id": mid, "created_at": at})
        ops.append({"id": op, "partner_id": "grocery", "member_id": mid, "kind": "earn",
                    "points": 10, "occurred_at": at, "recorded_at": at, "result": "{}",
                    "amount_minor": spend, "currency": "UAH", "rule_partner_id": "grocery",
                    "rule_version": rule, "idempotency_key": op})
        awards.append({"operation_id": op, "campaign_id": campaign_id, "version": 1,
                       "funder": "grocery", "partner_id": "grocery", "member_id": mid,
                       "points": 10 if treated else 0, "rewards": 1 if treated else 0,
                       "reward_code": None if treated else HOLDOUT_MARKER, "recorded_at": at})
    with gw.services.engine.begin() as conn:
        conn.execute(insert(t.members), members)
        conn.execute(insert(t.operations), ops)
        conn.execute(insert(t.promotion_awards), awards)


@pytest.mark.parametrize(("effect", "seed"), [(Fraction(1, 5), 1), (Fraction(0), 2)])
def test_uplift_interval_finds_a_known_effect(tmp_path: Path, effect: Fraction,
                                              seed: int) -> None:
    gw = make_gateway(tmp_path)
    cid = f"grocery:uplift{seed}"
    publish(gw, replace(bonus_campaign(cid, 10), holdout_percent=50))
    _seed_spend(gw, cid, effect, 150, seed)
    source = CampaignSource()
    with gw.services.engine.connect() as conn:
        item = source.item(conn, cid)
    assert item is not None
    report = effectiveness(gw.services.engine, source, item, gw.services.rules, "EUR",
                           NOW + timedelta(days=1))
    (uplift,) = report.uplift
    assert (uplift.treated.n, uplift.holdout.n) == (150, 150)
    assert report.points_issued == 1500 and report.cost_minor == 375  # 1,500 × 0.25 EUR
    true_effect = effect * 100_000  # the mean base spend is 100,000 minor units
    low, high = uplift.interval.low, uplift.interval.high
    assert low is not None and high is not None
    assert low <= Decimal(true_effect.numerator) / true_effect.denominator <= high
    assert uplift.interval.excludes_zero is (effect != 0)


def _cli(gw: Gateway, argv: list[str]) -> tuple[int, str]:
    import argparse
    import io

    from gateway.reports import cli

    out = io.StringIO()
    root = argparse.ArgumentParser()
    cli.register(root.add_subparsers(dest="c"), lambda: gw.services, out=out)
    args = root.parse_args(argv)
    return int(args.func(args)), out.getvalue()


def test_cli_prints_tables_csv_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    gw = make_gateway(tmp_path)
    publish(gw, replace(bonus_campaign("grocery:cli", 10), holdout_percent=20))
    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    _earn(gw, "c-1", 120_000, "k1")
    period = ["--start", "2026-11-01T00:00:00Z", "--end", "2026-12-01T00:00:00Z"]
    code, text = _cli(gw, ["reports", "programme", *period, "--html", str(tmp_path / "p.html")])
    assert code == 0
    points = 120 if _held(gw) else 130  # 120 base, + 10 unless held out (20 %)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert f"points earned {points}" in lines and "active members 1" in lines
    assert "2026-11 1 100.0 %" in lines
    assert "[" in capsys.readouterr().err  # each scan named with its elapsed time
    assert "plotly" in (tmp_path / "p.html").read_text()
    code, csv_text = _cli(gw, ["reports", "programme", *period, "--csv"])
    assert code == 0 and f"partner,grocery,{points},0,0,0,{points},," in csv_text
    code, table_text = _cli(gw, ["reports", "campaign", "grocery:cli"])
    assert code == 0 and "grocery:cli" in table_text and "holdout" in table_text
    code, csv_text = _cli(gw, ["reports", "campaign", "--csv"])
    assert code == 0 and csv_text.splitlines()[1].startswith("campaign,grocery:cli,grocery,")
    code, _ = _cli(gw, ["reports", "campaign", "grocery:none"])
    assert code == 2 and "no campaign of yours has this id" in capsys.readouterr().err


def _held(gw: Gateway) -> list[str]:
    with gw.services.engine.connect() as conn:
        return [str(m) for m in conn.execute(select(t.promotion_awards.c.campaign_id).where(
            t.promotion_awards.c.reward_code == HOLDOUT_MARKER)).scalars()]
