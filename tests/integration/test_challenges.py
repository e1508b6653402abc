"""Challenges end to end on this run's backend: the earns and returns go through the ledger's
real commands, their committed outbox events are fed to the real consumer (as the worker does),
and the bonus is a real ``bonus`` operation. November 2026 (the 2nd is a Monday).

Points: the grocery gives 1 point per 10.00 UAH, the fuel station's shop 1 per 20.00 UAH, the
electronics shop 1 per 1.00 EUR."""

from __future__ import annotations

import itertools
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway, build
from gateway.challenges import service as challenges
from gateway.core.clock import FixedClock
from gateway.core.errors import ChallengeStarted, InvalidInput
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.verify import verify_ledger
from gateway.outbox import Event, read_events
from gateway.promotions import funding
from gateway.settlement import exposure
from tests.support import harness
from tests.support.challenges import Drain, awards, bonus_operations, count, define, window_rows
from tests.support.harness import make_gateway
from tests.support.members import link_with_code

MONDAY = datetime(2026, 11, 2, 10, tzinfo=UTC)
CATALOG = Path(__file__).resolve().parents[2] / "partners" / "catalog"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY)


@pytest.fixture
def gw(tmp_path: Path, clock: FixedClock) -> Gateway:
    return make_gateway(tmp_path, clock=clock)


def member(gw: Gateway, n: int = 1) -> str:
    s = gw.services
    member_id = enrol_customer(s.engine, s.clock, "grocery", f"g-{n}").member_id
    link_with_code(s.engine, s.clock, "fuel", f"f-{n}", member_id)
    link_with_code(s.engine, s.clock, "electronics", f"e-{n}", member_id)
    return member_id


CURRENCY = {"grocery": "UAH", "fuel": "UAH", "electronics": "EUR"}
CUSTOMER = {"grocery": "g", "fuel": "f", "electronics": "e"}


def earn(gw: Gateway, partner: str, amount_minor: int, purchase: str, n: int = 1) -> int:
    return service.earn_points(gw.services.ledger, m.EarnPoints(
        partner, f"{CUSTOMER[partner]}-{n}", Money(amount_minor, CURRENCY[partner]), "store",
        purchase, f"k-{purchase}")).points


_RETURNS = itertools.count(1)


def give_back(gw: Gateway, partner: str, amount_minor: int, purchase: str) -> m.Returned:
    return service.return_purchase(gw.services.ledger, m.ReturnPurchase(
        partner, purchase, Money(amount_minor, CURRENCY[partner]), f"r-{next(_RETURNS)}"))


def available(gw: Gateway, member_id: str) -> int:
    return member_balance(gw.services.engine, gw.services.clock, member_id).available


def badges(gw: Gateway, member_id: str) -> list[tuple[str, int]]:
    return [(b.badge, b.times) for b in challenges.member_badges(gw.services.engine, member_id)]


THREE_BRANDS = {"id": "three-brands", "name": "3 brands this month", "badge": "explorer",
                "bonus_points": 150, "window": "month", "count": "brands", "target": 3}


def test_three_brands_in_a_month_pays_once_even_when_events_replay(gw: Gateway,
                                                                   clock: FixedClock) -> None:
    define(gw, **THREE_BRANDS)
    drain = Drain(gw, clock)
    alice = member(gw)
    assert earn(gw, "grocery", 100_000, "g-p1") == 100
    earn(gw, "grocery", 50_000, "g-p2")  # the same brand again: still one brand
    clock.advance(timedelta(days=3))
    assert earn(gw, "fuel", 40_000, "f-p1") == 20
    drain()
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["window_key"], w["done"], w["completed_at"]) == ("M2026-11", 2, None)
    assert bonus_operations(gw, alice) == []
    clock.advance(timedelta(days=10))
    assert earn(gw, "electronics", 10_000, "e-p1") == 100
    drain()
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["done"], w["completions"], w["bonus_points"]) == (3, 1, 150)
    [paid] = bonus_operations(gw, alice)
    # At the completing purchase's partner, its child, rated with that earn's rule version.
    assert (paid["kind"], paid["points"], paid["partner_id"], paid["rule_partner_id"],
            paid["rule_version"]) == ("bonus", 150, "electronics", "electronics", 1)
    with gw.services.engine.connect() as conn:
        parent = conn.execute(select(t.operations.c.purchase_id).where(
            t.operations.c.id == paid["parent_id"])).scalar_one()
    assert parent == "e-p1"
    assert available(gw, alice) == 100 + 50 + 20 + 100 + 150
    assert awards(gw, "challenge:three-brands") == [("coalition", 150, 1)]
    assert badges(gw, alice) == [("explorer", 1)]
    progress_rows = count(gw, t.challenge_progress)
    # Every event handed over again (a worker redelivering): nothing more is paid or counted.
    assert len(drain.replay()) > 0
    assert len(bonus_operations(gw, alice)) == 1
    assert count(gw, t.challenge_progress) == progress_rows
    assert available(gw, alice) == 420
    done = [e for e in drain.replay() if e.type in ("challenge.completed", "challenge.undone")]
    assert [(e.type, e.partner_id, e.member_id, e.data["window"], e.data["bonus_points"],
             e.operation_id) for e in done] == [
        ("challenge.completed", None, alice, "M2026-11", 150, paid["id"])]
    # A fourth purchase in the same month completes nothing more; December starts afresh.
    earn(gw, "grocery", 10_000, "g-p3")
    clock.set(datetime(2026, 12, 1, 9, tzinfo=UTC))
    earn(gw, "grocery", 10_000, "g-p4")
    drain()
    windows = window_rows(gw, "three-brands", alice)
    assert [(w["window_key"], w["done"], w["completions"]) for w in windows] == [
        ("M2026-11", 3, 1), ("M2026-12", 1, 0)]
    assert len(bonus_operations(gw, alice)) == 1
    assert badges(gw, alice) == [("explorer", 1)]  # kept in December
    assert verify_ledger(gw.services.engine).ok


FUEL_FIVE = {"id": "fuel-five", "name": "5 fuel visits in 30 days", "badge": "road-regular",
             "bonus_points": 100, "window": "rolling", "days": 30, "count": "purchases",
             "target": 5, "partners": ["fuel"]}


def test_fifth_fuel_visit_within_30_days_completes_and_outside_does_not(
        gw: Gateway, clock: FixedClock) -> None:
    define(gw, **FUEL_FIVE)
    drain = Drain(gw, clock)
    inside, outside = member(gw, 1), member(gw, 2)
    for day in (0, 7, 14, 21):
        clock.set(MONDAY + timedelta(days=day))
        earn(gw, "fuel", 40_000, f"in-{day}", 1)
        earn(gw, "fuel", 40_000, f"out-{day}", 2)
    earn(gw, "grocery", 100_000, "g-ignored", 1)  # not at fuel: does not count
    drain()
    assert [w["done"] for w in window_rows(gw, "fuel-five", inside)] == [4]
    clock.set(MONDAY + timedelta(days=29, hours=23))  # the window ends 30 days after day 0
    earn(gw, "fuel", 40_000, "in-29", 1)
    clock.set(MONDAY + timedelta(days=30, minutes=1))
    earn(gw, "fuel", 40_000, "out-30", 2)
    drain()
    [w] = window_rows(gw, "fuel-five", inside)
    assert (w["done"], w["completions"], w["ends_at"]) == (5, 1, MONDAY + timedelta(days=30))
    assert [(o["kind"], o["points"]) for o in bonus_operations(gw, inside)] == [("bonus", 100)]
    late = window_rows(gw, "fuel-five", outside)
    # The fifth visit came after the first window ended: it opens a second window, 1 of 5.
    assert [(w["done"], w["completions"]) for w in late] == [(4, 0), (1, 0)]
    assert late[1]["starts_at"] == MONDAY + timedelta(days=30, minutes=1)
    assert bonus_operations(gw, outside) == []
    view = {p.challenge.id: p for p in challenges.member_challenges(
        gw.services.engine, outside, clock.now())}
    assert (view["fuel-five"].done, view["fuel-five"].window_ends_at) == (
        1, MONDAY + timedelta(days=60, minutes=1))


STREAK = {"id": "weekly-streak", "name": "Every week, 3 weeks running", "badge": "streak-3",
          "bonus_points": 75, "window": "streak", "count": "weeks", "target": 3}


def test_a_gap_resets_a_weekly_streak(gw: Gateway, clock: FixedClock) -> None:
    define(gw, **STREAK)
    drain = Drain(gw, clock)
    alice = member(gw)
    for week, day in ((0, 0), (0, 3), (1, 1), (3, 4), (4, 0)):  # nothing in week 2
        clock.set(MONDAY + timedelta(weeks=week, days=day))
        earn(gw, "grocery", 20_000, f"w{week}d{day}")
    drain()
    runs = window_rows(gw, "weekly-streak", alice)
    assert [(w["window_key"], w["done"], w["completions"]) for w in runs] == [
        ("W2026-11-02", 2, 0), ("W2026-11-23", 2, 0)]
    assert bonus_operations(gw, alice) == []
    view = {p.challenge.id: p for p in challenges.member_challenges(
        gw.services.engine, alice, clock.now())}
    # Alive until the end of the week after the last one counted (Sunday 13 December).
    assert (view["weekly-streak"].done, view["weekly-streak"].window_ends_at) == (
        2, datetime(2026, 12, 7, tzinfo=UTC) + timedelta(weeks=1))
    clock.set(MONDAY + timedelta(weeks=5, days=6))  # week 5, Sunday: the third week running
    earn(gw, "fuel", 40_000, "w5")
    drain()
    runs = window_rows(gw, "weekly-streak", alice)
    assert [(w["done"], w["completions"]) for w in runs] == [(2, 0), (3, 1)]
    assert [o["points"] for o in bonus_operations(gw, alice)] == [75]
    # Week 6 starts a new streak (the completed one is not extended).
    clock.set(MONDAY + timedelta(weeks=6))
    earn(gw, "grocery", 20_000, "w6")
    drain()
    assert [w["window_key"] for w in window_rows(gw, "weekly-streak", alice)] == [
        "W2026-11-02", "W2026-11-23", "W2026-12-14"]
    assert badges(gw, alice) == [("streak-3", 1)]


GROCERY_FOUR = {"id": "big-four", "name": "4 purchases over 20.00 this month", "badge": "regular",
                "bonus_points": 40, "window": "month", "count": "purchases", "target": 4,
                "min_spend_minor": 2_000, "currency": "UAH"}


def test_a_partner_challenge_counts_its_own_purchases_over_the_minimum(
        gw: Gateway, clock: FixedClock) -> None:
    assert define(gw, "grocery", **GROCERY_FOUR) == "grocery:big-four"
    drain = Drain(gw, clock)
    alice = member(gw)
    for n, amount in enumerate((2_500, 1_500, 3_000, 1_999)):
        earn(gw, "grocery", amount, f"p{n}")
    earn(gw, "fuel", 50_000, "fuel-elsewhere")  # another brand: never counts here
    drain()
    [w] = window_rows(gw, "grocery:big-four", alice)
    assert (w["done"], w["completed_at"]) == (2, None)
    earn(gw, "grocery", 2_000, "p4")  # exactly the minimum counts
    earn(gw, "grocery", 9_000, "p5")
    drain()
    [w] = window_rows(gw, "grocery:big-four", alice)
    assert (w["done"], w["completions"], w["bonus_points"]) == (4, 1, 40)
    [paid] = bonus_operations(gw, alice)
    assert (paid["points"], paid["partner_id"]) == (40, "grocery")
    assert awards(gw, "challenge:grocery:big-four") == [("grocery", 40, 1)]
    owned = challenges.owned(gw.services.engine, "grocery", clock.now())
    assert [(o.challenge.id, o.members_in_progress, o.members_completed) for o in owned] == [
        ("grocery:big-four", 0, 1)]
    assert challenges.owned(gw.services.engine, "fuel", clock.now()) == []


def test_a_return_undoes_progress_and_reverses_the_bonus(gw: Gateway, clock: FixedClock) -> None:
    define(gw, **THREE_BRANDS)
    drain = Drain(gw, clock)
    alice = member(gw)
    earn(gw, "grocery", 100_000, "g-p1")
    earn(gw, "fuel", 40_000, "f-p1")
    earn(gw, "electronics", 10_000, "e-p1")
    drain()
    assert available(gw, alice) == 100 + 20 + 100 + 150
    # Half the fuel purchase back: it still counts (no minimum spend), nothing changes.
    clock.advance(timedelta(days=2))
    give_back(gw, "fuel", 20_000, "f-p1")
    drain()
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["done"], w["completed_at"] is not None, w["bonus_points"]) == (3, True, 150)
    assert available(gw, alice) == 370 - 10
    # The rest of it back: two brands left, below the target: the bonus is reversed.
    give_back(gw, "fuel", 20_000, "f-p1")
    drain()
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["done"], w["completed_at"], w["bonus_operation_id"], w["completions"]) == (
        2, None, None, 1)
    [paid, undone] = bonus_operations(gw, alice)
    assert (undone["kind"], undone["points"], undone["parent_id"]) == (
        "return", -150, paid["id"])
    assert available(gw, alice) == 100 + 100
    assert awards(gw, "challenge:three-brands") == [("coalition", 150, 1),
                                                    ("coalition", -150, -1)]
    assert badges(gw, alice) == []
    # Replayed, nothing is reversed twice.
    undone_events = [e for e in drain.replay() if e.type == "challenge.undone"]
    assert [(e.data["completion"], e.operation_id) for e in undone_events] == [(1, paid["id"])]
    assert len(bonus_operations(gw, alice)) == 2 and available(gw, alice) == 200
    # Another fuel purchase the same month completes the window again: a second completion.
    earn(gw, "fuel", 40_000, "f-p2")
    drain()
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["done"], w["completions"], w["bonus_points"]) == (3, 2, 150)
    keys = [o["idempotency_key"] for o in bonus_operations(gw, alice)]
    assert keys == [f"challenge:three-brands:{alice}:M2026-11:1",
                    f"challenge-undo:three-brands:{alice}:M2026-11:1",
                    f"challenge:three-brands:{alice}:M2026-11:2"]
    assert available(gw, alice) == 200 + 20 + 150
    assert badges(gw, alice) == [("explorer", 1)]
    assert verify_ledger(gw.services.engine).ok


def test_a_reversal_takes_only_what_the_wallet_still_holds(gw: Gateway,
                                                           clock: FixedClock) -> None:
    define(gw, **{**GROCERY_FOUR, "min_spend_minor": None, "currency": None, "target": 2,
                  "bonus_points": 500})
    drain = Drain(gw, clock)
    alice = member(gw)
    earn(gw, "grocery", 10_000, "p1")
    earn(gw, "grocery", 10_000, "p2")
    drain()
    assert available(gw, alice) == 10 + 10 + 500
    service.redeem_points(gw.services.ledger, m.RedeemPoints(
        "grocery", "g-1", 450, Money(100_000, "UAH"), "spend-1"))
    give_back(gw, "grocery", 10_000, "p2")  # its 10 points back, then below the target
    drain()
    [_, undone] = bonus_operations(gw, alice)
    assert undone["points"] == -60  # 520 - 450 - 10 left in the wallet
    with gw.services.engine.connect() as conn:
        result = conn.execute(select(t.operations.c.result).where(
            t.operations.c.id == undone["id"])).scalar_one()
    assert '"points_unrecovered":440' in result and '"points_reversed":60' in result
    assert available(gw, alice) == 0
    assert verify_ledger(gw.services.engine).ok


def test_definitions_are_strict_and_immutable_once_started(gw: Gateway,
                                                           clock: FixedClock) -> None:
    engine, now = gw.services.engine, clock.now()
    bad = [({**THREE_BRANDS, "target": 0}, "target"),
           ({**THREE_BRANDS, "colour": "red"}, "colour"),
           ({**THREE_BRANDS, "window": "year"}, "window"),
           ({**FUEL_FIVE, "days": None}, "days"),
           ({**FUEL_FIVE, "partners": ["nowhere"]}, "partners"),
           ({**STREAK, "count": "purchases"}, "count"),
           ({**THREE_BRANDS, "min_spend_minor": 100}, "currency"),
           ({**THREE_BRANDS, "starts_at": "2026-11-01T00:00:00"}, "starts_at")]
    for raw, field in bad:
        with pytest.raises(InvalidInput) as refused:
            challenges.define(engine, {"starts_at": "2026-01-01T00:00:00Z", **raw},
                              owner="coalition", actor="test", now=now)
        assert refused.value.field == field, raw
    with pytest.raises(InvalidInput) as refused:
        challenges.define(engine, {**THREE_BRANDS, "starts_at": "2026-01-01T00:00:00Z"},
                          owner="grocery", actor="test", now=now)
    assert refused.value.field == "count"  # only the coalition counts brands
    assert count(gw, t.challenges) == 0
    define(gw, **THREE_BRANDS)
    define(gw, **THREE_BRANDS)  # the same again: nothing new
    with pytest.raises(ChallengeStarted):
        define(gw, **{**THREE_BRANDS, "bonus_points": 200})
    # Not started yet: a new version. Then ended early: another.
    later = {**FUEL_FIVE, "starts_at": "2026-12-01T00:00:00Z"}
    define(gw, **later)
    define(gw, **{**later, "bonus_points": 120})
    ended = challenges.end(engine, "coalition", "fuel-five", datetime(2027, 1, 1, tzinfo=UTC),
                           actor="test", now=now)
    assert (ended.version, ended.bonus_points, ended.ends_at) == (
        3, 120, datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput):
        challenges.end(engine, "coalition", "fuel-five", now - timedelta(days=1), actor="test",
                       now=now)
    assert count(gw, t.challenge_versions) == 4


def test_the_coalition_catalog_syncs(gw: Gateway, tmp_path: Path) -> None:
    path = challenges.catalog_path(CATALOG)
    stored = challenges.sync_catalog(gw.services.engine, path, actor="catalog",
                                     now=gw.services.clock.now())
    assert [(c.id, c.target, c.bonus_points) for c in stored] == [
        ("three-brands", 3, 150), ("fuel-five", 5, 100), ("weekly-streak", 3, 75)]
    again = challenges.sync_catalog(gw.services.engine, path, actor="catalog",
                                    now=gw.services.clock.now())
    assert again == stored and count(gw, t.challenge_versions) == 3
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    broken = challenges.catalog_path(catalog)
    broken.write_text(path.read_text().replace('count = "brands"', 'count = "brand"'))
    with pytest.raises(InvalidInput) as refused:  # an invalid file stops start-up
        build(harness.test_settings(tmp_path, catalog_dir=catalog))
    assert refused.value.field == "count" and "challenges[0]" in str(refused.value)


def test_a_return_delivered_before_its_earn_still_undoes_it(gw: Gateway,
                                                           clock: FixedClock) -> None:
    """Delivery is at least once in no promised order: the return's event is handled first
    (the earn is counted from its operation, then undone); the earn's own event, later, finds
    it counted and adds nothing."""
    define(gw, **THREE_BRANDS)
    alice = member(gw)
    earn(gw, "grocery", 100_000, "g-p1")
    earn(gw, "fuel", 40_000, "f-p1")
    earn(gw, "electronics", 10_000, "e-p1")
    give_back(gw, "fuel", 40_000, "f-p1")
    drain = Drain(gw, clock)
    with gw.services.engine.connect() as conn:
        events = read_events(conn, limit=1000)
    wanted = [e for e in events if e.type in drain.consumer.types]
    first = [e for e in wanted if e.type == "points.returned"]
    for event in first + [e for e in wanted if e not in first] + first:
        drain.consumer.handle(gw.services.engine, event)
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["done"], w["completions"], w["completed_at"]) == (2, 0, None)
    assert bonus_operations(gw, alice) == []
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.challenge_progress.c.amount_minor)
                            .where(t.challenge_progress.c.partner_id == "fuel")).scalars().all()
    assert sorted(rows) == [-40_000, 40_000]


def test_a_refused_funding_completes_without_points(gw: Gateway, clock: FixedClock) -> None:
    """The grocery is prepaid with nothing left: the completion and its badge stand, no points
    are posted and nothing is charged (docs/challenges.md, "Funding")."""
    s = gw.services
    exposure.set_terms(s.engine, s.clock, "grocery", mode="prepaid", policy=None,
                       limit_points=None, actor="finance:ana")
    define(gw, "grocery", **{**GROCERY_FOUR, "min_spend_minor": None, "currency": None,
                             "target": 1})
    drain = Drain(gw, clock)
    alice = member(gw)
    earn(gw, "grocery", 10_000, "p1")
    drain()
    [w] = window_rows(gw, "grocery:big-four", alice)
    assert (w["done"], w["completions"], w["bonus_operation_id"], w["bonus_points"]) == (
        1, 1, None, 0)
    assert w["completed_at"] is not None and bonus_operations(gw, alice) == []
    assert badges(gw, alice) == [("regular", 1)] and available(gw, alice) == 10
    with s.engine.connect() as conn:
        grocery = funding.read(conn, "grocery")
    assert grocery is not None and grocery.issued_points == 0
    give_back(gw, "grocery", 10_000, "p1")  # undone: the badge goes, no reversal to post
    drain()
    assert badges(gw, alice) == [] and bonus_operations(gw, alice) == []


def test_at_most_max_challenges_run_at_once(gw: Gateway, clock: FixedClock,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.challenges.repository.MAX_CHALLENGES", 2)
    define(gw, **THREE_BRANDS)
    define(gw, **FUEL_FIVE)
    with pytest.raises(InvalidInput) as refused:
        define(gw, **STREAK)
    assert refused.value.field == "id" and count(gw, t.challenges) == 2
    challenges.end(gw.services.engine, "coalition", "fuel-five", None, actor="test",
                   now=clock.now())
    clock.advance(timedelta(seconds=1))  # ended now: no longer running
    assert define(gw, **STREAK) == "weekly-streak"


def test_concurrent_workers_pay_once(gw: Gateway, clock: FixedClock) -> None:
    """Two workers handle events of one member at the same moment (the same event twice, and
    two purchases that each complete the window): the member's lock serialises them, one
    bonus is paid."""
    define(gw, **THREE_BRANDS)
    drain = Drain(gw, clock)
    alice = member(gw)
    earn(gw, "grocery", 100_000, "g-p1")
    earn(gw, "fuel", 40_000, "f-p1")
    drain()
    earn(gw, "electronics", 10_000, "e-p1")
    earn(gw, "electronics", 20_000, "e-p2")
    with gw.services.engine.connect() as conn:
        last = [e for e in read_events(conn, after=drain.cursor, limit=100)
                if e.type == "points.earned"]
    assert len(last) == 2
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def work(event: Event) -> None:
        barrier.wait()
        try:
            drain.consumer.handle(gw.services.engine, event)
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(e,)) for e in (*last, *last)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    [w] = window_rows(gw, "three-brands", alice)
    assert (w["done"], w["completions"]) == (3, 1)
    assert [o["points"] for o in bonus_operations(gw, alice)] == [150]
    assert count(gw, t.challenge_progress) == 4
    assert available(gw, alice) == 100 + 20 + 100 + 200 + 150


def test_the_member_is_told_a_reversed_bonus_as_such_not_as_a_second_return(
        gw: Gateway, clock: FixedClock) -> None:
    """Review 2: the bonus's reversal is a ``return`` operation of its own (no purchase, no
    amount); the member's feed must not tell it as another returned purchase."""
    from gateway.notifications import store
    from gateway.notifications.consumer import make_consumer

    define(gw, **THREE_BRANDS)
    drain = Drain(gw, clock)
    alice = member(gw)
    earn(gw, "grocery", 100_000, "g-p1")
    earn(gw, "fuel", 40_000, "f-p1")
    earn(gw, "electronics", 10_000, "e-p1")
    drain()
    give_back(gw, "fuel", 40_000, "f-p1")  # two brands left: the bonus is reversed
    drain()
    notifications = make_consumer(clock, lambda: None)
    with gw.services.engine.connect() as conn:
        returned = read_events(conn, limit=10_000, types=["points.returned"])
    for event in returned:
        notifications.handle(gw.services.engine, event)
    page = store.feed(gw.services.engine, alice, 10, None)
    assert [(n.kind, n.title) for n in page.items] == [
        ("points_returned", "150 bonus points taken back: a challenge is no longer complete"),
        ("points_returned", "20 points taken back after a return at Shlyakh Fuel")]


# --- review 2 of issue 13: bounded partner counts (challenge_totals, challenge_open_days) ------
ROLL_TWO = {"id": "roll-two", "name": "2 visits in 10 days", "badge": "quick", "bonus_points": 10,
            "window": "rolling", "days": 10, "count": "purchases", "target": 2}
STREAK_TWO = {"id": "streak-two", "name": "2 weeks running", "badge": "steady",
              "bonus_points": 20, "window": "streak", "count": "weeks", "target": 2}


def partner_counts(gw: Gateway, at: datetime) -> dict[str, tuple[int, int]]:
    return {o.challenge.id.split(":", 1)[1]: (o.members_in_progress, o.members_completed)
            for o in challenges.owned(gw.services.engine, "grocery", at)}


def test_the_partners_counts_are_kept_with_the_progress_and_expire_with_the_windows(
        gw: Gateway, clock: FixedClock) -> None:
    """Month, rolling (10 days) and streak challenges of the grocery, three members: the
    counts (members in progress in a window still open, members with a standing completion)
    follow completions, a return undoing one, and windows ending with no event at all; a
    replay of every event changes nothing."""
    for raw in (GROCERY_FOUR, ROLL_TWO, STREAK_TWO):
        define(gw, "grocery", **raw)
    drain = Drain(gw, clock)
    for n in (1, 2, 3):
        member(gw, n)

    def at(when: datetime, *buys: tuple[str, int]) -> None:
        clock.set(when)
        for purchase, n in buys:
            earn(gw, "grocery", 2_500, purchase, n)
        drain()

    at(MONDAY, ("a1", 1), ("b1", 2))
    at(MONDAY + timedelta(days=1), ("a2", 1))  # m1 completes the rolling window
    assert partner_counts(gw, clock.now()) == {
        "big-four": (2, 0), "roll-two": (1, 1), "streak-two": (2, 0)}
    clock.set(MONDAY + timedelta(days=2))
    give_back(gw, "grocery", 2_500, "a2")  # undoes m1's rolling completion
    drain()
    assert partner_counts(gw, clock.now()) == {
        "big-four": (2, 0), "roll-two": (2, 0), "streak-two": (2, 0)}
    at(MONDAY + timedelta(days=3), *((f"c{k}", 3) for k in range(4)))  # m3: 4 purchases
    assert partner_counts(gw, clock.now()) == {
        "big-four": (2, 1), "roll-two": (2, 1), "streak-two": (3, 0)}
    at(MONDAY + timedelta(days=7), ("a3", 1))  # week 2: m1's streak and rolling complete
    assert partner_counts(gw, clock.now()) == {
        "big-four": (2, 1), "roll-two": (1, 2), "streak-two": (2, 1)}
    # No events from here on: the windows end by the clock alone.
    assert partner_counts(gw, MONDAY + timedelta(days=11)) == {  # rolling ended on the 12th
        "big-four": (2, 1), "roll-two": (0, 2), "streak-two": (2, 1)}
    assert partner_counts(gw, MONDAY + timedelta(days=13, hours=13)) == {  # Sun 15th 23:00
        "big-four": (2, 1), "roll-two": (0, 2), "streak-two": (2, 1)}
    assert partner_counts(gw, MONDAY + timedelta(days=14)) == {  # streaks of week 1 ended
        "big-four": (2, 1), "roll-two": (0, 2), "streak-two": (0, 1)}
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert partner_counts(gw, december - timedelta(seconds=1)) == {
        "big-four": (2, 1), "roll-two": (0, 2), "streak-two": (0, 1)}
    assert partner_counts(gw, december) == {
        "big-four": (0, 1), "roll-two": (0, 2), "streak-two": (0, 1)}
    drain.replay()
    assert partner_counts(gw, december) == {
        "big-four": (0, 1), "roll-two": (0, 2), "streak-two": (0, 1)}


def test_the_partners_counts_read_no_window_rows_whatever_the_history(
        gw: Gateway, clock: FixedClock) -> None:
    """The counts used to count distinct members over every window each challenge ever had
    (``ix_challenge_windows_counts``: grows with history). Now the listing reads the
    challenges, their totals row and their open days (primary keys), never a window."""
    from sqlalchemy import event

    define(gw, "grocery", **GROCERY_FOUR)
    define(gw, "grocery", **ROLL_TWO)
    drain = Drain(gw, clock)
    member(gw, 1)
    for month in range(3):  # three months of history
        clock.set(MONDAY + timedelta(days=31 * month))
        for k in range(4):
            earn(gw, "grocery", 2_500, f"m{month}-{k}")
    drain()
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()))

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        counts = partner_counts(gw, clock.now())
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert counts == {"big-four": (0, 1), "roll-two": (0, 1)}
    assert [s for s in seen if "challenge_windows" in s] == []
    assert len([s for s in seen if "challenge_totals" in s or "challenge_open_days" in s]) == 2


def test_many_members_counted_at_once_keep_the_counts_exact(gw: Gateway,
                                                            clock: FixedClock) -> None:
    """Six members' purchases in a month and a rolling challenge, each event handled twice,
    twelve consumers at once: they queue on the challenges' count rows (one open day each),
    every consumer finishes, and the counts are exact."""
    define(gw, "grocery", **GROCERY_FOUR)
    define(gw, "grocery", **ROLL_TWO)
    drain = Drain(gw, clock)
    for n in range(1, 7):
        member(gw, n)
        earn(gw, "grocery", 2_500, f"x{n}", n)
    with gw.services.engine.connect() as conn:
        found = [e for e in read_events(conn, limit=100) if e.type == "points.earned"]
    assert len(found) == 6
    barrier = threading.Barrier(12)
    failures: list[BaseException] = []

    def work(event: Event) -> None:
        barrier.wait()
        try:
            drain.consumer.handle(gw.services.engine, event)
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(e,)) for e in (*found, *found)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert partner_counts(gw, clock.now()) == {"big-four": (6, 0), "roll-two": (6, 0)}
    with gw.services.engine.connect() as conn:
        assert sorted((r.challenge_id, r.members) for r in conn.execute(
            select(t.challenge_open_days))) == [("grocery:big-four", 6), ("grocery:roll-two", 6)]
