"""Deadlocks and serialisation failures are retried, against real PostgreSQL errors.

Two transactions lock two rows in opposite orders: PostgreSQL's deadlock detector aborts one
of them (SQLSTATE 40P01). ``retrying`` must run the victim again so both commit; it must not
retry anything else. The same deadlock, provoked inside two ledger commands, shows that
``run_command`` retries the whole unit of work. PostgreSQL only: SQLite has no row locks, its
writers queue on ``BEGIN IMMEDIATE`` and never deadlock, so there is nothing to provoke."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.retry import (
    DEADLOCK_DETECTED,
    SERIALIZATION_FAILURE,
    retrying,
    sqlstate,
)
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.runner import Tx, run_command
from tests.support.harness import BACKEND, NOW, make_gateway

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="PostgreSQL only: SQLite serialises writers whole, it cannot deadlock or abort one",
)


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    gateway = make_gateway(tmp_path, clock=FixedClock(NOW))
    for customer in ("a", "b"):
        enrol_customer(gateway.services.engine, gateway.services.clock, "grocery", customer)
    return gateway


def wallet_ids(gw: Gateway) -> list[int]:
    with gw.services.engine.connect() as conn:
        return list(conn.execute(
            select(t.accounts.c.id).where(t.accounts.c.code.like("member:%:wallet"))
            .order_by(t.accounts.c.id)).scalars())


class Crossing:
    """Two transactions that each lock one row, wait for the other to do the same, then ask
    for the other's row: a certain deadlock on the first attempt, none after it."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.attempts: list[int] = []
        self.lock = threading.Lock()

    def lock_in_order(self, conn: Any, first: int, second: int) -> None:
        with self.lock:
            self.attempts.append(first)
            attempt = self.attempts.count(first)
        lock_row = select(t.accounts.c.id).where(t.accounts.c.id == first).with_for_update()
        conn.execute(lock_row)
        if attempt == 1:
            self.barrier.wait(timeout=30)
        conn.execute(select(t.accounts.c.id).where(t.accounts.c.id == second).with_for_update())


def both(calls: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(c) for c in calls]]


def test_a_real_deadlock_is_retried_until_both_commit(gw: Gateway) -> None:
    engine: Engine = gw.services.engine
    a, b = wallet_ids(gw)
    crossing = Crossing()
    retried: list[str | None] = []

    def unit(first: int, second: int) -> int:
        with engine.begin() as conn:
            crossing.lock_in_order(conn, first, second)
            conn.execute(update(t.accounts).where(t.accounts.c.id == first)
                         .values(balance=t.accounts.c.balance + 1))
        return first

    def run(first: int, second: int) -> int:
        return retrying(lambda: unit(first, second),
                        on_retry=lambda exc, _n: retried.append(sqlstate(exc)))

    assert sorted(both([lambda: run(a, b), lambda: run(b, a)])) == sorted([a, b])
    assert retried == [DEADLOCK_DETECTED]  # exactly one victim, retried once
    assert len(crossing.attempts) == 3
    with engine.connect() as conn:  # each committed exactly once
        balances = conn.execute(select(t.accounts.c.id, t.accounts.c.balance)
                                .where(t.accounts.c.id.in_([a, b]))).all()
    assert sorted(int(bal) for _, bal in balances) == [1, 1]


def test_without_retries_the_deadlock_surfaces(gw: Gateway) -> None:
    """The control for the test above: one attempt only, and the victim's error is the
    deadlock itself (so the test above can fail if retrying did nothing)."""
    engine = gw.services.engine
    a, b = wallet_ids(gw)
    crossing = Crossing()

    def unit(first: int, second: int) -> str | None:
        try:
            with engine.begin() as conn:
                crossing.lock_in_order(conn, first, second)
        except DBAPIError as exc:
            return sqlstate(exc)
        return "ok"

    outcomes = both([lambda: retrying(lambda: unit(a, b), attempts=1),
                     lambda: retrying(lambda: unit(b, a), attempts=1)])
    assert sorted(o or "" for o in outcomes) == sorted([DEADLOCK_DETECTED, "ok"])


def test_a_serialisation_failure_is_retried(gw: Gateway) -> None:
    """Two REPEATABLE READ transactions update one row: the later one fails with 40001 and is
    run again on a fresh snapshot, so neither increment is lost."""
    engine = gw.services.engine
    a = wallet_ids(gw)[0]
    read_both = threading.Barrier(2)
    calls: list[int] = []
    retried: list[str | None] = []

    def unit() -> None:
        calls.append(1)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == a)).one()
                if len(calls) <= 2:
                    read_both.wait(timeout=30)  # both snapshots taken before either writes
                conn.execute(update(t.accounts).where(t.accounts.c.id == a)
                             .values(balance=t.accounts.c.balance + 1))

    both([lambda: retrying(unit, on_retry=lambda e, _n: retried.append(sqlstate(e)))
          for _ in range(2)])
    assert retried == [SERIALIZATION_FAILURE]
    with engine.connect() as conn:
        assert conn.execute(select(t.accounts.c.balance)
                            .where(t.accounts.c.id == a)).scalar_one() == 2


def test_other_errors_are_not_retried(gw: Gateway) -> None:
    engine = gw.services.engine
    calls: list[int] = []

    def unit() -> None:
        calls.append(1)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO members (id, created_at) "
                              "SELECT id, created_at FROM members LIMIT 1"))

    with pytest.raises(IntegrityError):
        retrying(unit)
    assert calls == [1]


def test_run_command_retries_a_deadlocked_unit_of_work(gw: Gateway) -> None:
    """Two ledger commands whose bodies deadlock: the victim's whole unit of work runs again
    (a fresh transaction, the idempotency lookup again) and both answer."""
    a, b = wallet_ids(gw)
    crossing = Crossing()
    ctx = gw.services.ledger

    def command(key: str, first: int, second: int) -> str:
        cmd = EarnPoints("grocery", "a", Money(1000, "UAH"), "store", f"p-{key}", key)

        def body(tx: Tx, _fingerprint: str) -> str:
            crossing.lock_in_order(tx.conn, first, second)
            return key

        return run_command(ctx, "grocery", cmd, str, body)

    answers = both([lambda: command("k1", a, b), lambda: command("k2", b, a)])
    assert answers == ["k1", "k2"]
    assert len(crossing.attempts) == 3  # one body ran twice: the deadlock victim's
