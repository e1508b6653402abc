"""Merge and erasure as properties, on a real ledger (either backend): whatever two members
earned, spent and where they were linked, a merge keeps every point and every lot's origin and
expiry (now on the survivor), leaves the absorbed member empty, ``verify`` clean and the
settlement report byte-for-byte the same; an erasure forfeits or donates exactly what was left,
keeps every other partner's line and ``verify`` clean."""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, given, settings
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import DomainError
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.erasure import erase_member
from gateway.ledger.member_ops import merge_members
from gateway.ledger.model import EarnPoints, RedeemPoints
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.service import earn_points, redeem_points
from gateway.ledger.verify import verify_ledger
from gateway.settlement.model import Period
from gateway.settlement.service import settlement_report
from tests.support.harness import NOW, make_gateway
from tests.support.members import link_with_code

EVER = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
CURRENCY = {"grocery": "UAH", "electronics": "EUR", "fuel": "UAH"}
PARTNERS = sorted(CURRENCY)


@dataclass
class Env:
    gw: Gateway
    clock: FixedClock
    serial: itertools.count[int]


@cache
def env(test: str) -> Env:
    """One gateway per test (its database lives as long as the test: tests/conftest.py), each
    example with fresh members."""
    clock = FixedClock(NOW)
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    gw = make_gateway(Path(tempfile.mkdtemp(prefix=f"{test}-", dir=scratch)), clock=clock)
    return Env(gw, clock, itertools.count())


activity = st.lists(st.tuples(st.sampled_from(PARTNERS), st.integers(20_000, 600_000),
                              st.integers(0, 20), st.integers(0, 80)), min_size=0, max_size=4)


def live(e: Env, member_id: str) -> Counter[tuple[str, datetime, bool]]:
    """Points left per (origin, expiry, pending) in the member's lots."""
    with e.gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.lots.c.origin_partner_id, t.lots.c.expires_at,
                                   t.lots.c.pending, t.lots.c.remaining)
                            .where(t.lots.c.member_id == member_id, t.lots.c.remaining > 0))
        found: Counter[tuple[str, datetime, bool]] = Counter()
        for origin, expires, pending, remaining in rows:
            found[(str(origin), expires, bool(pending))] += int(remaining)
    return found


def balances(e: Env, member_id: str) -> tuple[int, int, int]:
    with e.gw.services.engine.connect() as conn:
        b = LedgerRepository(conn).member_balances(member_id)
    return tuple(b[k] for k in sorted(b))  # type: ignore[return-value]


def member(e: Env, links: list[str], moves: list[tuple[str, int, int, int]]) -> str:
    """A member linked at ``links`` (first by enrolment), with earns and spends there."""
    n = next(e.serial)
    engine, ctx = e.gw.services.engine, e.gw.services.ledger
    member_id = enrol_customer(engine, e.clock, links[0], f"{links[0]}-{n}").member_id
    for partner in links[1:]:
        link_with_code(engine, e.clock, partner, f"{partner}-{n}", member_id)
    for i, (partner, amount, days, spend) in enumerate(moves):
        if partner not in links:
            continue
        e.clock.advance(timedelta(days=days, minutes=1))
        customer = f"{partner}-{n}"
        try:
            earn_points(ctx, EarnPoints(partner, customer, Money(amount, CURRENCY[partner]),
                                        "store", f"p-{n}-{i}", f"e-{n}-{i}"))
            if spend:
                redeem_points(ctx, RedeemPoints(partner, customer, spend + 100,
                                                Money(10**9, CURRENCY[partner]), f"r-{n}-{i}"))
        except DomainError:
            pass  # a cap, a minimum or a short wallet: the property holds for whatever posted
    return member_id


links_of = st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=3, unique=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a_links=links_of, b_links=links_of, a_moves=activity, b_moves=activity)
def test_merge_keeps_every_point_and_expiry(a_links: list[str], b_links: list[str],
                                            a_moves: list[tuple[str, int, int, int]],
                                            b_moves: list[tuple[str, int, int, int]]) -> None:
    e = env("merge")
    a, b = member(e, a_links, a_moves), member(e, b_links, b_moves)
    engine = e.gw.services.engine
    before_lots = live(e, a) + live(e, b)
    totals = [x + y for x, y in zip(balances(e, a), balances(e, b), strict=True)]
    report = settlement_report(engine, e.gw.services.rules, EVER, "EUR")
    merged = merge_members(engine, e.clock, a, b, "test")
    event(f"lots moved: {min(merged.lots, 3)}+, links closed: {len(merged.links_closed)}")
    assert live(e, a) == before_lots
    assert live(e, b) == Counter()
    assert list(balances(e, a)) == totals
    assert balances(e, b) == (0, 0, 0, 0)
    assert sorted(merged.links_moved + merged.links_closed) == sorted(b_links)
    assert settlement_report(engine, e.gw.services.rules, EVER, "EUR") == report
    assert verify_ledger(engine).ok


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(links=links_of, moves=activity, donate=st.booleans())
def test_erasure_forfeits_or_donates_exactly_what_was_left(
        links: list[str], moves: list[tuple[str, int, int, int]], donate: bool) -> None:
    e = env("erase")
    who = member(e, links, moves)
    engine, rules = e.gw.services.engine, e.gw.services.rules
    left = sum(live(e, who).values())
    wallet = sum(v for (_, _, pending), v in live(e, who).items() if not pending)
    report = settlement_report(engine, rules, EVER, "EUR")
    done = erase_member(e.gw.services.ledger, who, "DONATE" if donate else "FORFEIT",
                        "charity" if donate else None, "test")
    assert done.donated + done.forfeited == left
    event(f"points left: {'some' if left else 'none'}")
    assert done.donated == (wallet if donate else 0)
    assert live(e, who) == Counter()
    after = settlement_report(engine, rules, EVER, "EUR")
    assert [p for p in after.partners if p.partner_id != "charity"] == [
        p for p in report.partners if p.partner_id != "charity"]
    assert after.coalition.breakage_points == report.coalition.breakage_points + done.forfeited
    assert verify_ledger(engine).ok
