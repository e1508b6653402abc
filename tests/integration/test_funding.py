"""Funders' funding accounts (issue 12) on this run's real database: charge and release in the
issuing transaction, refuse and alert policies, terms and top-ups as append-only events, the
exposure finance reads (points and money), and the race: N concurrent charges against funding
that covers k give exactly k."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import FundingLimitReached, InvalidInput, NotFound
from gateway.core.ids import ClientId, PartnerId
from gateway.core.principal import Principal
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.runner import transact
from gateway.promotions import funding
from gateway.promotions.funding import ChargeOutcome, FundingMode, FundingPolicy
from gateway.settlement import exposure
from tests.integration.test_concurrency import errors, race, results, warm_pool
from tests.support.bonus_postings import post_bonus, return_bonus
from tests.support.harness import NOW, make_gateway


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def gw(tmp_path: Path, clock: FixedClock) -> Gateway:
    return make_gateway(tmp_path, clock=clock)


def _charge(gw: Gateway, funder: str, points: int) -> ChargeOutcome:
    """One charge in its own write transaction, on the ledger's write path."""
    now = gw.services.clock.now()
    outcome: ChargeOutcome = transact(gw.services.engine,
                                      lambda conn: funding.charge(conn, funder, points, now))
    return outcome


def _release(gw: Gateway, funder: str, points: int) -> None:
    now = gw.services.clock.now()
    transact(gw.services.engine, lambda conn: funding.release(conn, funder, points, now))


def _read(gw: Gateway, funder: str) -> funding.Funding:
    with gw.services.engine.connect() as conn:
        found = funding.read(conn, funder)
    assert found is not None
    return found


def _events(gw: Gateway, funder: str) -> list[tuple[str, str, int]]:
    with gw.services.engine.connect() as conn:
        return [(e["kind"], e["actor"], e["points"])  # type: ignore[misc]
                for e in reversed(funding.events(conn, funder))]


def _set(gw: Gateway, funder: str, **terms: Any) -> funding.Funding:
    s = gw.services
    return exposure.set_terms(s.engine, s.clock, funder, actor="finance:ana",
                              **{"mode": None, "policy": None, "limit_points": None, **terms})


def test_no_funding_account_is_unlimited(gw: Gateway) -> None:
    assert _charge(gw, "grocery", 10**9) == ChargeOutcome("grocery", 10**9, limited=False)
    _release(gw, "grocery", 5)
    with gw.services.engine.connect() as conn:
        assert funding.all_funders(conn) == []


def test_prepaid_refuses_past_its_balance_and_changes_nothing(gw: Gateway) -> None:
    s = gw.services
    _set(gw, "grocery", mode="prepaid")
    exposure.top_up(s.engine, s.clock, "grocery", 100, actor="finance:ana", note="invoice 7")
    assert _charge(gw, "grocery", 60).left_points == 40
    before = _read(gw, "grocery")
    with pytest.raises(FundingLimitReached) as refused:
        _charge(gw, "grocery", 50)
    assert (refused.value.funder, refused.value.left_points, refused.value.field) == (
        "grocery", 40, "funder")
    assert "'grocery' has 40 points of funding left" in refused.value.message
    assert _read(gw, "grocery") == before  # the refused charge counted nothing
    _release(gw, "grocery", 20)  # a return gave 20 back
    assert _charge(gw, "grocery", 50).left_points == 10
    f = _read(gw, "grocery")
    assert (f.funded_points, f.issued_points, f.reversed_points, f.left_points,
            f.exposure_points) == (100, 110, 20, 10, 0)
    assert _events(gw, "grocery") == [("opened", "finance:ana", 0),
                                      ("topup", "finance:ana", 100)]
    # A return of points never charged (awarded before the account opened) adds no headroom.
    _release(gw, "grocery", 500)
    f = _read(gw, "grocery")
    assert (f.issued_points, f.reversed_points, f.left_points) == (110, 110, 100)


def test_charge_all_is_all_or_nothing(gw: Gateway) -> None:
    s = gw.services
    _set(gw, "grocery", mode="prepaid")
    exposure.top_up(s.engine, s.clock, "grocery", 10, actor="finance:ana")
    _set(gw, "coalition", mode="credit", limit_points=100)
    now = s.clock.now()
    with pytest.raises(FundingLimitReached) as refused:
        transact(s.engine, lambda conn: funding.charge_all(
            conn, {"grocery": 11, "coalition": 5, "fuel": 3}, now))
    assert refused.value.funder == "grocery"
    assert (_read(gw, "coalition").issued_points, _read(gw, "grocery").issued_points) == (0, 0)
    outcomes = transact(s.engine, lambda conn: funding.charge_all(
        conn, {"grocery": 10, "coalition": 5, "fuel": 3, "electronics": 0}, now))
    assert [(o.funder, o.limited, o.left_points) for o in outcomes] == [
        ("coalition", True, 95), ("fuel", False, None), ("grocery", True, 0)]
    transact(s.engine, lambda conn: funding.release_all(conn, {"grocery": 4, "coalition": 5},
                                                        now))
    assert (_read(gw, "coalition").left_points, _read(gw, "grocery").left_points) == (100, 4)


def test_alert_policy_lets_it_through_and_records_the_alert(gw: Gateway) -> None:
    _set(gw, "coalition", mode="credit", limit_points=10, policy="alert")
    assert _charge(gw, "coalition", 8) == ChargeOutcome("coalition", 8, True, 2)
    outcome = _charge(gw, "coalition", 7)
    assert (outcome.alerted, outcome.left_points) == (True, -5)
    f = _read(gw, "coalition")
    assert (f.issued_points, f.alerts, f.exposure_points, f.left_points) == (15, 1, 15, -5)
    assert [k for k, _, _ in _events(gw, "coalition")] == ["opened", "alert"]
    # Switching to refuse: nothing more goes through until finance acts.
    _set(gw, "coalition", policy="refuse")
    with pytest.raises(FundingLimitReached):
        _charge(gw, "coalition", 1)
    exposure.top_up(gw.services.engine, gw.services.clock, "coalition", 6, actor="finance:ana")
    assert _charge(gw, "coalition", 1).left_points == 0


def test_terms_are_checked_and_name_the_field(gw: Gateway) -> None:
    s = gw.services
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({}, InvalidInput, "mode"),  # a new account needs its mode
        ({"mode": "prepaid", "limit_points": 5}, InvalidInput, "limit"),
        ({"mode": "loan"}, InvalidInput, "mode"),
        ({"mode": "credit", "policy": "shrug"}, InvalidInput, "policy"),
        ({"mode": "credit", "limit_points": -1}, InvalidInput, "limit"),
    ]
    for terms, error, field in cases:
        with pytest.raises(error) as caught:
            _set(gw, "grocery", **terms)
        assert caught.value.field == field, terms  # type: ignore[attr-defined]
    with pytest.raises(NotFound) as missing:
        _set(gw, "no-such-partner", mode="credit")
    assert missing.value.field == "funder"
    with pytest.raises(NotFound):
        exposure.top_up(s.engine, s.clock, "grocery", 10, actor="x")
    _set(gw, "grocery", mode="credit", limit_points=50)
    with pytest.raises(InvalidInput) as zero:
        exposure.top_up(s.engine, s.clock, "grocery", 0, actor="x")
    assert zero.value.field == "points"
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.funding_events)).scalar() == 1


def test_exposure_in_points_and_money(gw: Gateway, clock: FixedClock) -> None:
    s = gw.services
    _set(gw, "grocery", mode="credit", limit_points=1000)
    _set(gw, "coalition", mode="prepaid")
    exposure.top_up(s.engine, s.clock, "coalition", 500, actor="finance:ana")
    _charge(gw, "grocery", 301)
    _release(gw, "grocery", 100)
    exposure.top_up(s.engine, s.clock, "grocery", 50, actor="finance:ana")  # a repayment
    _charge(gw, "coalition", 120)
    clock.advance(timedelta(minutes=1))
    rows = {x.funding.funder: x for x in exposure.funder_exposure(
        s.engine, s.rules, "EUR", clock.now())}
    g = rows["grocery"]
    # 301 issued - 100 reversed = 201 net; 50 repaid: exposure 151; left 1000 + 50 - 201 = 849.
    assert (g.funding.net_issued_points, g.funding.exposure_points, g.funding.left_points) == (
        201, 151, 849)
    assert g.price_per_point_minor == Fraction(1, 4)  # grocery: 0.25 EUR cents per point
    assert (g.net_issued_minor, g.exposure_minor, g.left_minor) == (51, 38, 212)  # CEIL/FLOOR
    c = rows["coalition"]
    assert (c.funding.exposure_points, c.funding.left_points, c.exposure_minor) == (0, 380, None)
    bound = Principal(ClientId("grocery-finance"), PartnerId("grocery"),
                      frozenset({"settlement:read"}), kind="finance")
    assert [x.funding.funder for x in exposure.funder_exposure(
        s.engine, s.rules, "EUR", clock.now(), bound)] == ["grocery"]


def test_a_refused_charge_rolls_back_the_whole_award(gw: Gateway, clock: FixedClock) -> None:
    s = gw.services
    member = enrol_customer(s.engine, clock, "grocery", "g-1").member_id
    _set(gw, "grocery", mode="prepaid")
    exposure.top_up(s.engine, s.clock, "grocery", 40, actor="finance:ana")
    award = post_bonus(s.ledger, "grocery", member, "grocery", 30, "b1", charge=True)

    def transfers(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(t.transfers)).scalar_one())

    with s.engine.connect() as conn:
        before = transfers(conn)
    with pytest.raises(FundingLimitReached):
        post_bonus(s.ledger, "grocery", member, "grocery", 30, "b2", charge=True)
    with s.engine.connect() as conn:
        assert transfers(conn) == before
    assert return_bonus(s.ledger, "grocery", member, award, "grocery", 25, "r1",
                        release=True) == 25
    assert _read(gw, "grocery").left_points == 35
    post_bonus(s.ledger, "grocery", member, "grocery", 30, "b2", charge=True)
    assert _read(gw, "grocery").left_points == 5


@pytest.mark.parametrize(("n", "k"), [(12, 5)])
def test_concurrent_charges_against_a_limit_that_covers_k_give_exactly_k(
        gw: Gateway, n: int, k: int) -> None:
    _set(gw, "grocery", mode="credit", limit_points=10 * k + 9)  # k charges of 10, not k + 1
    warm_pool(gw, n)
    outcomes = race([lambda: _charge(gw, "grocery", 10) for _ in range(n)])
    assert len(results(outcomes)) == k
    refused = errors(outcomes)
    assert len(refused) == n - k and all(isinstance(e, FundingLimitReached) for e in refused)
    assert sorted(r.left_points for r in results(outcomes)) == [9 + 10 * i for i in range(k)]
    f = _read(gw, "grocery")
    assert (f.issued_points, f.left_points) == (10 * k, 9)
    assert f.mode is FundingMode.CREDIT and f.policy is FundingPolicy.REFUSE
