"""Per-day rollups (decision 016): a report from stored day sums plus grouped passes over the
rest equals the report from the rows alone, to the minor unit, on this run's backend; a day is
rolled up only once final; ``verify`` finds a wrong stored sum; the close rule is the service's.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select

from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.core.errors import DomainError, Forbidden
from gateway.core.ids import ClientId, PartnerId
from gateway.core.money import Money
from gateway.core.principal import Principal
from gateway.db import tables as t
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.verify import verify_ledger
from gateway.settlement import rollups
from gateway.settlement.model import Period, Report
from gateway.settlement.service import (
    _snapshot_transaction,
    build_report,
    check_closer,
    check_rollups,
    close_period,
    roll_up,
    settlement_report,
)
from tests.settlement.scenario import short_expiry_catalog
from tests.support import harness
from tests.support.harness import mark, release_databases, track
from tests.support.members import link_with_code

PARTNERS = {"grocery": ("UAH", 1000), "electronics": ("EUR", 100), "fuel": ("UAH", 2000),
            "charity": ("UAH", 10)}
EARNERS = ("grocery", "electronics", "fuel")
T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def _gateway(tmp: Path, clock: FixedClock):  # type: ignore[no-untyped-def]
    gw = build(harness.test_settings(tmp, catalog_dir=short_expiry_catalog(tmp)), clock=clock)
    track(gw.services.engine)
    return gw


def _both(engine: Engine, rules, period: Period) -> tuple[Report, Report]:  # type: ignore[no-untyped-def]
    with _snapshot_transaction(engine, write=False) as conn:
        return (build_report(conn, rules, period, "EUR"),
                build_report(conn, rules, period, "EUR", stored=False))


def _rolled(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(
            t.settlement_rollup_days)).scalar_one())


step = st.one_of(
    st.tuples(st.just("earn"), st.sampled_from(EARNERS), st.integers(50, 600)),
    st.tuples(st.just("redeem"), st.sampled_from(list(PARTNERS)), st.integers(40, 300)),
    st.tuples(st.just("return"), st.integers(0, 30), st.integers(1, 4)),
    st.tuples(st.just("late"), st.sampled_from(EARNERS), st.integers(1, 400)),
    st.tuples(st.just("wait"), st.integers(1, 40), st.just(0)),  # hours: across midnights
    st.tuples(st.just("close"), st.just(""), st.just(0)),
    st.tuples(st.just("report"), st.integers(0, 200), st.integers(1, 300)),  # hours
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(step, min_size=3, max_size=30))
def test_a_report_from_rollups_equals_the_report_from_rows(
        steps: list[tuple[str, object, int]]) -> None:
    since = mark()
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(T0 + timedelta(hours=10))
        gw = _gateway(Path(tmp), clock)
        ledger, engine, rules = gw.services.ledger, gw.services.engine, gw.services.rules
        try:
            member = enrol_customer(engine, clock, "grocery", "grocery-c").member_id
            for partner in PARTNERS:
                if partner != "grocery":
                    link_with_code(engine, clock, partner, f"{partner}-c", member)
            purchases: list[tuple[str, int, str]] = []
            days_closed = 0
            periods: list[Period] = []
            for n, (kind, what, size) in enumerate(steps):
                try:
                    if kind in ("earn", "late"):
                        partner = str(what)
                        currency, unit = PARTNERS[partner]
                        occurred = (T0 + timedelta(hours=2) if kind == "late" and days_closed
                                    else None)
                        service.earn_points(ledger, m.EarnPoints(
                            partner, f"{partner}-c", Money(size * unit, currency), "store",
                            f"p{n}", f"k{n}", occurred_at=occurred))
                        purchases.append((partner, size * unit, f"p{n}"))
                    elif kind == "redeem":
                        partner = str(what)
                        service.redeem_points(ledger, m.RedeemPoints(
                            partner, f"{partner}-c", size, Money(10**9, PARTNERS[partner][0]),
                            f"k{n}"))
                    elif kind == "return" and purchases:
                        partner, amount, purchase = purchases[int(str(what)) % len(purchases)]
                        service.return_purchase(ledger, m.ReturnPurchase(
                            partner, purchase, Money(max(1, amount // size),
                                                     PARTNERS[partner][0]), f"k{n}"))
                    elif kind == "wait":
                        clock.advance(timedelta(hours=size, minutes=7))
                    elif kind == "close" and not days_closed and clock.now() > T0 + timedelta(
                            days=1):
                        close_period(engine, rules, clock, Period(T0, T0 + timedelta(days=1)),
                                     "EUR", actor="prop")
                        days_closed = 1
                    elif kind == "report":
                        start = T0 + timedelta(hours=int(str(what)))
                        period = Period(start, start + timedelta(hours=size))
                        periods.append(period)
                        roll_up(engine, clock, period)  # as the nightly job would
                        settlement_report(engine, rules, period, "EUR")
                except DomainError:
                    pass  # refused (no points, unknown purchase): changes nothing
                clock.advance(timedelta(minutes=13))
            clock.advance(timedelta(days=2))
            whole = Period(T0, clock.now().replace(microsecond=0) + timedelta(days=1))
            roll_up(engine, clock, whole)
            for period in [*periods, whole, Period(T0 + timedelta(hours=5),
                                                   T0 + timedelta(days=3, hours=1))]:
                from_rollups, from_rows = _both(engine, rules, period)
                assert from_rollups.canonical_json() == from_rows.canonical_json(), period
            assert _rolled(engine) >= 1
            assert check_rollups(engine) == []
        finally:
            gw.services.engine.dispose()
    release_databases(since)


def test_days_are_rolled_up_once_final_and_verify_finds_a_wrong_sum(tmp_path: Path) -> None:
    clock = FixedClock(T0 + timedelta(hours=10))
    gw = _gateway(tmp_path, clock)
    ledger, engine, rules = gw.services.ledger, gw.services.engine, gw.services.rules
    enrol_customer(engine, clock, "grocery", "g-c")
    service.earn_points(ledger, m.EarnPoints("grocery", "g-c", Money(200_000, "UAH"), "store",
                                             "p1", "k1"))
    january = Period(T0, T0 + timedelta(days=31))
    # Midnight plus less than the margin: the day may still receive rows, it stays open.
    clock.set(T0 + timedelta(days=1) + rollups.MARGIN - timedelta(seconds=1))
    assert roll_up(engine, clock, january) == 0
    clock.set(T0 + timedelta(days=1) + rollups.MARGIN)
    assert roll_up(engine, clock, january) == 1
    assert roll_up(engine, clock, january) == 0  # once
    with engine.connect() as conn:
        days = conn.execute(select(t.settlement_rollups.c.part, t.settlement_rollups.c.points)
                            .where(t.settlement_rollups.c.day == date(2026, 1, 1))).all()
    assert ("flow", 200) in [(p, int(v)) for p, v in days]
    from_rollups, from_rows = _both(engine, rules, january)
    assert from_rollups.canonical_json() == from_rows.canonical_json()
    assert from_rollups.partners[[p.partner_id for p in from_rollups.partners]
                                 .index("grocery")].figures.issued_points == 200
    assert verify_ledger(engine, extra=[check_rollups]).ok

    # A stored sum the rows do not give (the tables refuse UPDATE, so a wrong row is a new
    # day's): verify names it, and the report would show it (the rollup is what is read).
    with engine.begin() as conn:
        conn.execute(insert(t.settlement_rollup_days), {
            "day": date(2026, 1, 2), "rolled_at": clock.now(), "row_count": 1})
        conn.execute(insert(t.settlement_rollups), {
            "day": date(2026, 1, 2), "seq": 0, "part": "flow", "side": 1, "kind": "earn",
            "partner_id": "grocery", "origin": None, "rule_partner_id": None,
            "rule_version": None, "adjusts": None, "points": 5})
    found = verify_ledger(engine, extra=[check_rollups])
    assert not found.ok
    assert any("settlement rollup 2026-01-02 flow" in p and "stored 5, the ledger says 0" in p
               for p in found.problems), found.problems


def _principal(partner: str | None, *scopes: str) -> Principal:
    return Principal(ClientId("c1"), PartnerId(partner) if partner else None,
                     frozenset(scopes), kind="finance")


def test_who_may_close_is_the_services_rule(tmp_path: Path) -> None:
    clock = FixedClock(T0 + timedelta(days=40))
    gw = _gateway(tmp_path, clock)
    engine, rules = gw.services.engine, gw.services.rules
    january = Period(T0, T0 + timedelta(days=31))
    reason = ("a finance client bound to partner 'grocery' cannot close coalition periods; "
              "closing needs a coalition-wide finance client")
    for scopes in (("settlement:read",), ("settlement:read", "settlement:close")):
        with pytest.raises(Forbidden) as refused:
            close_period(engine, rules, clock, january, "EUR", actor="t",
                         principal=_principal("grocery", *scopes))
        assert refused.value.message == reason and refused.value.scope == "settlement:close"
    with pytest.raises(Forbidden) as refused:
        check_closer(_principal(None, "settlement:read"))
    assert "lacks the scope 'settlement:close'" in refused.value.message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.settlement_periods)
                            ).scalar_one() == 0
    closed = close_period(engine, rules, clock, january, "EUR", actor="t",
                          principal=_principal(None, "settlement:close"))
    assert closed.id == january.id
    assert _rolled(engine) == 31  # the close stored its final days for good


def test_a_report_never_writes_and_the_job_stores_a_week_per_transaction(
        tmp_path: Path) -> None:
    """A report is a query: over final days not rolled up it reads the rows and stores nothing
    (on SQLite a write there would hold the one write lock for the whole pass). The job stores
    them in transactions of at most ``ROLL_UP_DAYS_PER_TRANSACTION`` days, and the report then
    reads them: the same figures either way."""
    from gateway.settlement import service as settlement

    clock = FixedClock(T0 + timedelta(hours=10))
    gw = _gateway(tmp_path, clock)
    ledger, engine, rules = gw.services.ledger, gw.services.engine, gw.services.rules
    enrol_customer(engine, clock, "grocery", "g-w")
    for n in range(10):  # one earn on each of ten days
        service.earn_points(ledger, m.EarnPoints("grocery", "g-w", Money(100_000 + n, "UAH"),
                                                 "store", f"pw{n}", f"kw{n}"))
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=1))
    january = Period(T0, T0 + timedelta(days=31))
    before = settlement_report(engine, rules, january, "EUR")
    assert _rolled(engine) == 0
    transactions = 0
    real = settlement._snapshot_transaction

    def counted(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += bool(kwargs.get("write"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    settlement._snapshot_transaction = counted  # type: ignore[assignment]
    try:
        stored = roll_up(engine, clock, january)
    finally:
        settlement._snapshot_transaction = real  # type: ignore[assignment]
    final_days = (clock.now() - rollups.MARGIN).date() - T0.date()
    assert stored == final_days.days == _rolled(engine) >= 11
    per = settlement.ROLL_UP_DAYS_PER_TRANSACTION
    assert transactions == -(-stored // per)
    after = settlement_report(engine, rules, january, "EUR")
    assert after.canonical_json() == before.canonical_json()
    assert sum(p.figures.issued_points for p in after.partners) == sum(
        (100_000 + n) // 1000 for n in range(10))
