"""Migration 0023_bounded fills the partner counts' rows from the rows they summarise, so a
database that had challenges and draws before it answers the same counts after it (review 2
of issue 13; decisions 032 and 033). The data is made through the real services; the rows the
services kept are then removed (the state before 0023) and the migration's own fill run."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import delete, select

from gateway.app import Gateway
from gateway.challenges import service as challenges
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.draws.service import EVERY, close_draw, list_draws
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from tests.support.challenges import Drain, define
from tests.support.draws import drain, grocery_draw
from tests.support.harness import NOW, make_gateway

VERSIONS = Path(__file__).resolve().parents[2] / "gateway" / "db" / "migrations" / "versions"


def migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("m0023", VERSIONS / "0023_bounded.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, clock=FixedClock(NOW))


def snapshot(gw: Gateway) -> dict[str, Any]:
    now = gw.services.clock.now()
    return {
        "draws": [(s.draw.id, s.entries, s.entrants) for s in list_draws(gw.services.engine,
                                                                        EVERY)],
        "challenges": [(o.challenge.id, o.members_in_progress, o.members_completed)
                       for o in challenges.owned(gw.services.engine, "grocery", now)],
        "later": [[(o.challenge.id, o.members_in_progress) for o in challenges.owned(
            gw.services.engine, "grocery", now + timedelta(days=days))] for days in (8, 12)],
    }


def test_the_fill_recreates_the_rows_the_services_kept(gw: Gateway) -> None:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    engine = gw.services.engine
    define(gw, "grocery", id="four", name="4 this month", badge="b4", bonus_points=10,
           window="month", count="purchases", target=4)
    define(gw, "grocery", id="two-weeks", name="2 weeks", badge="w2", bonus_points=10,
           window="streak", count="weeks", target=2)
    challenge_drain = Drain(gw, clock)
    open_draw, closing = grocery_draw(gw, name="Open"), grocery_draw(gw, name="Closing")
    for n in range(1, 5):
        enrol_customer(engine, clock, "grocery", f"g-{n}")
        for k in range(n):  # member n buys n times: member 4 completes the month
            service.earn_points(gw.services.ledger, m.EarnPoints(
                "grocery", f"g-{n}", Money(60_000, "UAH"), "store", f"p{n}-{k}",
                f"k{n}-{k}"))
    challenge_drain()
    drain(gw)
    clock.advance(timedelta(days=7))
    close_draw(engine, clock.now(), closing.id, EVERY)
    clock.set(NOW + timedelta(days=3))
    before = snapshot(gw)
    # 2 entries per 600.00 UAH purchase, 5 at most: 2 + 4 + 5 + 5; closed: the frozen list's
    assert sorted(before["draws"]) == sorted([(closing.id, 16, 4), (open_draw.id, 16, 4)])
    assert before["challenges"] == [("grocery:four", 3, 1), ("grocery:two-weeks", 4, 0)]
    # 4 December: November's windows are over, the week's streaks open until Sunday the 6th
    assert before["later"] == [[("grocery:four", 0), ("grocery:two-weeks", 4)],
                               [("grocery:four", 0), ("grocery:two-weeks", 0)]]
    with engine.begin() as conn:
        for table in (t.draw_totals, t.challenge_open_days, t.challenge_totals):
            conn.execute(delete(table))
    emptied = snapshot(gw)
    assert emptied != before
    with engine.begin() as conn:
        module = migration()
        module._fill_challenges(conn)
        module._fill_draws(conn)
        module._fill_challenges(conn)  # a second run adds nothing
        module._fill_draws(conn)
    assert snapshot(gw) == before
    with engine.connect() as conn:
        assert len(conn.execute(select(t.draw_totals)).all()) == 2
