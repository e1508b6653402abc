"""Races on this run's real database (a SQLite file, or PostgreSQL) with real threads: every
call opens its own unit of work on its own connection, a barrier releases all threads at once.
Guarantees 4 (no overdraft) and 5 (one operation per key, replays answer the same, a reused key
writes nothing) must hold under contention, and so must every other check-then-act on the write
paths (one earn per purchase, cumulative returns, one capture per hold, one link per customer);
see docs/decisions/005-postgresql-write-paths.md. On SQLite writers queue whole on BEGIN
IMMEDIATE; on PostgreSQL they run at once under READ COMMITTED, so these are the tests that
the row and advisory locks are taken before the reads they protect."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import (
    AlreadyLinked,
    HoldAlreadySettled,
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidAmount,
    NothingToReturn,
    PurchaseAlreadyRecorded,
)
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger.balances import member_balance
from gateway.ledger.context import LedgerContext
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.holds import authorise_redemption, capture_redemption, void_redemption
from gateway.ledger.model import (
    AuthoriseRedemption,
    CaptureRedemption,
    EarnPoints,
    HoldPlaced,
    RedeemPoints,
    ReturnPurchase,
    VoidRedemption,
    to_json,
)
from gateway.ledger.service import earn_points, redeem_points, return_purchase
from gateway.ledger.verify import verify_ledger
from tests.support.harness import NOW, ledger_snapshot, make_gateway
from tests.support.members import link_with_code

# Races of 40-50 threads against pools of 30: under the side-by-side passes' load the queued
# ones can wait out the pool's 30 s timeout. dev.py test runs these alone, afterwards.
pytestmark = pytest.mark.serial

T = TypeVar("T")
Outcome = tuple[str, Any]  # ("ok", result) or ("error", exception)


def race(calls: list[Callable[[], T]]) -> list[Outcome]:
    """Run every call on its own thread, all released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> Outcome:
        barrier.wait(timeout=30)
        try:
            return ("ok", call())
        except Exception as exc:
            return ("error", exc)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def warm_pool(gw: Gateway, n: int) -> None:
    """Open ``n`` pooled connections up front: a thread that must first connect (~10-30 ms)
    starts late and would miss the race these tests are about."""
    engine = gw.services.engine
    connections = [engine.connect() for _ in range(n)]
    for conn in connections:
        conn.close()


def results(outcomes: list[Outcome]) -> list[Any]:
    return [value for kind, value in outcomes if kind == "ok"]


def errors(outcomes: list[Outcome]) -> list[Exception]:
    return [value for kind, value in outcomes if kind == "error"]


def operation_count(gw: Gateway, **where: str) -> int:
    query = select(func.count()).select_from(t.operations)
    for column, value in where.items():
        query = query.where(t.operations.c[column] == value)
    with gw.services.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def gw(tmp_path: Path, clock: FixedClock) -> Gateway:
    gateway = make_gateway(tmp_path, clock=clock)
    enrol_customer(gateway.services.engine, clock, "grocery", "g-1")
    return gateway


def earn(gw: Gateway, minor: int, key: str, purchase: str | None = None) -> int:
    cmd = EarnPoints("grocery", "g-1", Money(minor, "UAH"), "store", purchase or f"p-{key}", key)
    return earn_points(gw.services.ledger, cmd).points


def member_id(gw: Gateway) -> str:
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.members.c.id)).scalar_one())


# --- (a) no overdraft under contention --------------------------------------------------------
POINTS = 60


def as_command(call: Any, request: RedeemPoints) -> RedeemPoints | AuthoriseRedemption:
    """The request as the command ``call`` takes (authorise has its own)."""
    return AuthoriseRedemption.of(request) if call is authorise_redemption else request


@pytest.mark.parametrize("command", [redeem_points, authorise_redemption])
def test_concurrent_spends_never_overdraw(gw: Gateway, clock: FixedClock, command: Any) -> None:
    assert earn(gw, 5 * POINTS * 1000, "e-1") == 5 * POINTS  # exactly five spends' worth
    basket = Money(100_000, "UAH")
    outcomes = race([
        lambda i=i: command(gw.services.ledger, as_command(
            command, RedeemPoints("grocery", "g-1", POINTS, basket, f"spend-{i}")))
        for i in range(20)
    ])
    assert len(results(outcomes)) == 5, errors(outcomes)
    assert len(errors(outcomes)) == 15
    assert all(isinstance(e, InsufficientPoints) for e in errors(outcomes)), errors(outcomes)
    # Each success saw the balance its predecessors left: 240, 180, 120, 60, 0.
    assert sorted(r.available for r in results(outcomes)) == [0, 60, 120, 180, 240]
    balance = member_balance(gw.services.engine, clock, member_id(gw))
    assert balance.available == 0
    assert balance.held == (5 * POINTS if command is authorise_redemption else 0)
    kind = "authorise" if command is authorise_redemption else "redeem"
    assert operation_count(gw, kind=kind) == 5
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems


# --- (b) one key, many concurrent identical requests --------------------------------------------
class NoKeyLocks:
    """As if every request reached another gateway process: no in-flight lock is shared, so
    only the database's UNIQUE key stands between concurrent duplicates."""

    @contextmanager
    def hold(self, key: str, *, wait_s: float = 10.0) -> Iterator[bool]:
        yield False


def ledger_of(gw: Gateway, in_flight_locks: bool) -> LedgerContext:
    ctx = gw.services.ledger
    return ctx if in_flight_locks else dataclasses.replace(ctx, locks=NoKeyLocks())


@pytest.mark.parametrize("in_flight_locks", [True, False], ids=["one-process", "many-processes"])
def test_concurrent_replays_of_one_earn_make_one_operation(gw: Gateway,
                                                           in_flight_locks: bool) -> None:
    ctx = ledger_of(gw, in_flight_locks)
    cmd = EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p-1", "same-key")
    outcomes = race([lambda: earn_points(ctx, cmd) for _ in range(50)])
    assert errors(outcomes) == []
    answers = results(outcomes)
    assert len(answers) == 50
    assert len({to_json(a) for a in answers}) == 1  # byte-identical answers
    assert all(a == answers[0] for a in answers)
    assert answers[0].points == 120 and answers[0].available == 120
    assert operation_count(gw, kind="earn") == 1
    assert operation_count(gw, idempotency_key="same-key") == 1
    assert member_balance(gw.services.engine, gw.services.clock, member_id(gw)).available == 120
    assert verify_ledger(gw.services.engine).ok


def test_concurrent_replays_of_one_authorise_make_one_hold(gw: Gateway, clock: FixedClock) -> None:
    earn(gw, 100_000, "e-1")
    cmd = AuthoriseRedemption("grocery", "g-1", 50, Money(10_000, "UAH"), "hold-key",
                              purchase_id="b-1")
    outcomes = race([lambda: authorise_redemption(gw.services.ledger, cmd) for _ in range(50)])
    assert errors(outcomes) == []
    answers: list[HoldPlaced] = results(outcomes)
    assert len({to_json(a) for a in answers}) == 1
    assert operation_count(gw, kind="authorise") == 1
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.holds)).scalar_one() == 1
    balance = member_balance(gw.services.engine, clock, member_id(gw))
    assert (balance.available, balance.held) == (50, 50)
    # The single hold can be captured once; concurrent captures with one key replay too.
    capture = CaptureRedemption("grocery", answers[0].hold_id, "cap-key")
    captured = race([lambda: capture_redemption(gw.services.ledger, capture) for _ in range(20)])
    assert errors(captured) == []
    assert len({to_json(c) for c in results(captured)}) == 1
    assert operation_count(gw, kind="capture") == 1
    assert verify_ledger(gw.services.engine).ok


def test_concurrent_distinct_earns_all_land(gw: Gateway, clock: FixedClock) -> None:
    outcomes = race([lambda i=i: earn(gw, 10_000, f"k-{i}") for i in range(30)])
    assert errors(outcomes) == []
    assert sum(results(outcomes)) == 30 * 10
    assert member_balance(gw.services.engine, clock, member_id(gw)).available == 300
    assert verify_ledger(gw.services.engine).ok


# --- (c)/(d) a key reused with another request ------------------------------------------------
def test_key_reused_with_another_amount_writes_nothing(gw: Gateway) -> None:
    first = EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p-1", "k")
    original = earn_points(gw.services.ledger, first)
    before = ledger_snapshot(gw)
    other = EarnPoints("grocery", "g-1", Money(999_000, "UAH"), "store", "p-1", "k")
    outcomes = race([lambda: earn_points(gw.services.ledger, other) for _ in range(20)]
                    + [lambda: earn_points(gw.services.ledger, first) for _ in range(20)])
    kinds = Counter(type(v).__name__ for _, v in outcomes)
    assert kinds == {"IdempotencyKeyReused": 20, "Earned": 20}, kinds
    assert all(r == original for r in results(outcomes))
    assert ledger_snapshot(gw) == before


def test_concurrent_first_use_of_a_key_with_two_requests(gw: Gateway) -> None:
    """Two different requests race for a fresh key: one wins, every other request for the
    other body is refused, and exactly one operation exists."""
    a = EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p-1", "k")
    b = EarnPoints("grocery", "g-1", Money(50_000, "UAH"), "store", "p-1", "k")
    outcomes = race([lambda: earn_points(gw.services.ledger, a) for _ in range(15)]
                    + [lambda: earn_points(gw.services.ledger, b) for _ in range(15)])
    won = results(outcomes)
    assert len(won) == 15 and len({to_json(r) for r in won}) == 1
    assert all(isinstance(e, IdempotencyKeyReused) for e in errors(outcomes))
    assert len(errors(outcomes)) == 15
    assert operation_count(gw, idempotency_key="k") == 1


def test_authorise_key_reused_with_other_points_writes_nothing(gw: Gateway) -> None:
    earn(gw, 200_000, "e-1")
    basket = Money(100_000, "UAH")
    authorise_redemption(gw.services.ledger,
                         AuthoriseRedemption("grocery", "g-1", 60, basket, "h"))
    before = ledger_snapshot(gw)
    other = AuthoriseRedemption("grocery", "g-1", 70, basket, "h")
    outcomes = race([lambda: authorise_redemption(gw.services.ledger, other) for _ in range(20)])
    assert len(errors(outcomes)) == 20
    assert all(isinstance(e, IdempotencyKeyReused) for e in errors(outcomes))
    assert ledger_snapshot(gw) == before


@pytest.mark.parametrize(("first", "second"), [(redeem_points, authorise_redemption),
                                               (authorise_redemption, redeem_points)])
def test_key_of_a_redeem_sent_to_authorise_is_reused(gw: Gateway, first: Any,
                                                     second: Any) -> None:
    """Redeem and authorise take the same fields; the same key and body sent to the other
    mutation is a different request, not a replay (it used to crash decoding the stored
    answer as the wrong result type)."""
    earn(gw, 200_000, "e-1")
    cmd = RedeemPoints("grocery", "g-1", 60, Money(100_000, "UAH"), "k")
    first(gw.services.ledger, as_command(first, cmd))
    before = ledger_snapshot(gw)
    with pytest.raises(IdempotencyKeyReused):
        second(gw.services.ledger, as_command(second, cmd))
    assert ledger_snapshot(gw) == before


def test_keys_are_scoped_per_partner(gw: Gateway, clock: FixedClock) -> None:
    """The same key at two partners is two operations (guarantee 5 is per partner)."""
    enrol_customer(gw.services.engine, clock, "fuel", "f-1")
    outcomes = race([
        lambda: earn_points(gw.services.ledger, EarnPoints(
            "grocery", "g-1", Money(20_000, "UAH"), "store", "p-1", "shared")),
        lambda: earn_points(gw.services.ledger, EarnPoints(
            "fuel", "f-1", Money(20_000, "UAH"), "store", "p-1", "shared")),
    ])
    assert errors(outcomes) == []
    assert operation_count(gw, idempotency_key="shared") == 2


# --- (e) check-then-act on the other write paths ------------------------------------------------
def test_one_purchase_earns_once_under_contention(gw: Gateway) -> None:
    """Twenty earns of one purchase under twenty keys: one posts, the rest are refused."""
    outcomes = race([lambda i=i: earn_points(gw.services.ledger, EarnPoints(
        "grocery", "g-1", Money(10_000, "UAH"), "store", "same-purchase", f"k-{i}"))
        for i in range(20)])
    assert len(results(outcomes)) == 1, errors(outcomes)
    assert all(isinstance(e, PurchaseAlreadyRecorded) for e in errors(outcomes))
    assert operation_count(gw, kind="earn", purchase_id="same-purchase") == 1
    assert verify_ledger(gw.services.engine).ok


def test_concurrent_returns_of_one_purchase_never_return_more_than_it(
        gw: Gateway, clock: FixedClock) -> None:
    """Ten returns of 40 % each under ten keys: two fit, the third would exceed the purchase."""
    earned = earn(gw, 100_000, "e-1", purchase="big")
    assert earned == 100
    outcomes = race([lambda i=i: return_purchase(gw.services.ledger, ReturnPurchase(
        "grocery", "big", Money(40_000, "UAH"), f"r-{i}")) for i in range(10)])
    assert len(results(outcomes)) == 2, errors(outcomes)
    assert all(isinstance(e, InvalidAmount) for e in errors(outcomes)), errors(outcomes)
    assert sorted(r.amount_returned_total.amount_minor for r in results(outcomes)) == [
        40_000, 80_000]
    assert sum(r.points_reversed for r in results(outcomes)) == 80
    assert member_balance(gw.services.engine, clock, member_id(gw)).available == 20
    # The last 20 % returns once; then nothing is left.
    last = race([lambda i=i: return_purchase(gw.services.ledger, ReturnPurchase(
        "grocery", "big", Money(20_000, "UAH"), f"last-{i}")) for i in range(5)])
    assert len(results(last)) == 1
    assert all(isinstance(e, NothingToReturn) for e in errors(last)), errors(last)
    assert member_balance(gw.services.engine, clock, member_id(gw)).available == 0
    assert verify_ledger(gw.services.engine).ok


@pytest.mark.parametrize("settle", ["capture", "void", "mixed"])
def test_a_hold_settles_once_under_contention(gw: Gateway, clock: FixedClock,
                                              settle: str) -> None:
    earn(gw, 100_000, "e-1")
    hold = authorise_redemption(gw.services.ledger, AuthoriseRedemption(
        "grocery", "g-1", 60, Money(100_000, "UAH"), "h-1"))

    def call(i: int) -> Any:
        kind = settle if settle != "mixed" else ("capture", "void")[i % 2]
        if kind == "capture":
            return capture_redemption(gw.services.ledger,
                                      CaptureRedemption("grocery", hold.hold_id, f"c-{i}"))
        return void_redemption(gw.services.ledger,
                               VoidRedemption("grocery", hold.hold_id, f"v-{i}"))

    outcomes = race([lambda i=i: call(i) for i in range(12)])
    assert len(results(outcomes)) == 1, errors(outcomes)
    assert all(isinstance(e, HoldAlreadySettled) for e in errors(outcomes)), errors(outcomes)
    assert operation_count(gw, kind="capture") + operation_count(gw, kind="void") == 1
    balance = member_balance(gw.services.engine, clock, member_id(gw))
    captured = operation_count(gw, kind="capture") == 1
    assert (balance.available, balance.held) == (40 if captured else 100, 0)
    assert verify_ledger(gw.services.engine).ok


def test_concurrent_enrolments_of_one_customer_make_one_member(gw: Gateway,
                                                               clock: FixedClock) -> None:
    warm_pool(gw, 10)
    outcomes = race([lambda: enrol_customer(gw.services.engine, clock, "grocery", "new-1")
                     for _ in range(20)])
    assert errors(outcomes) == []
    assert len({m.member_id for m in results(outcomes)}) == 1
    assert sum(m.created for m in results(outcomes)) == 1
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.members)).scalar_one() == 2


def test_one_member_links_once_per_partner_under_contention(gw: Gateway,
                                                            clock: FixedClock) -> None:
    """Ten customer ids of the fuel partner race to link the one member: one link wins."""
    member = member_id(gw)
    warm_pool(gw, 10)
    outcomes = race([lambda i=i: link_with_code(gw.services.engine, clock, "fuel", f"f-{i}",
                                               member) for i in range(10)])
    assert len(results(outcomes)) == 1, errors(outcomes)
    assert all(isinstance(e, AlreadyLinked) for e in errors(outcomes)), errors(outcomes)
    with gw.services.engine.connect() as conn:
        links = conn.execute(select(func.count()).select_from(t.linked_accounts)
                             .where(t.linked_accounts.c.partner_id == "fuel")).scalar_one()
    assert links == 1
