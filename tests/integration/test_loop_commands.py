"""Ledger commands awaited on the event loop (``Context.command``, decision 012): on SQLite with
a group-commit writer the resolver queues the command's body with the writer and awaits the
durable answer without a worker thread; on PostgreSQL (and for a check that must block) the
command runs in the thread pool as before. Two bodies with one idempotency key in one batch
make one operation and one replay."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import Connection, func, select

from gateway.api.context import Context
from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.ids import ClientId, PartnerId
from gateway.core.money import Money
from gateway.core.principal import Principal
from gateway.db import tables as t
from gateway.db.batch import writer_for
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints, to_json
from gateway.ledger.runner import leave_loop_for_io
from gateway.ledger.service import earn_points
from gateway.ledger.verify import verify_ledger
from tests.support.harness import BACKEND, NOW, make_gateway

WAIT_S = 10.0


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    clock = FixedClock(NOW)
    gateway = make_gateway(tmp_path, clock=clock)
    enrol_customer(gateway.services.engine, clock, "grocery", "g-1")
    return gateway


def context(gw: Gateway) -> Context:
    principal = Principal(ClientId("till"), PartnerId("grocery"), frozenset())
    return Context(gw.services, principal)


def earn(key: str, purchase: str, minor: int = 120_000) -> EarnPoints:
    return EarnPoints("grocery", "g-1", Money(minor, "UAH"), "store", purchase, key)


def operations(gw: Gateway, key: str) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.operations)
                                .where(t.operations.c.idempotency_key == key)).scalar_one())


def threads_used(monkeypatch: pytest.MonkeyPatch) -> list[Callable[..., Any]]:
    """Every call that ``Context.run`` sends to the thread pool, recorded (and still run)."""
    sent: list[Callable[..., Any]] = []
    real = anyio.to_thread.run_sync

    async def spy(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    return sent


def test_an_earn_needs_a_thread_only_on_postgresql(gw: Gateway,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sent = threads_used(monkeypatch)
    c = context(gw)
    earned = asyncio.run(c.command(earn_points, gw.services.ledger, earn("k-1", "p-1")))
    assert earned.points == 120
    assert operations(gw, "k-1") == 1
    assert len(sent) == (0 if BACKEND == "sqlite" else 1)


def test_a_check_that_must_block_leaves_the_loop(gw: Gateway,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sent = threads_used(monkeypatch)
    ran_in: list[int] = []

    def command(cmd: EarnPoints) -> int:
        leave_loop_for_io()  # what ``identify.admit`` does before a store code's I/O
        ran_in.append(threading.get_ident())
        return earn_points(gw.services.ledger, cmd).points

    points = asyncio.run(context(gw).command(command, earn("k-2", "p-2")))
    assert points == 120
    assert operations(gw, "k-2") == 1
    assert len(sent) == 1 and ran_in[-1] != threading.main_thread().ident


def test_a_rules_refresh_due_is_read_in_a_thread_not_on_the_loop(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule book checks the database for new rule versions every few seconds: when that
    check is due, the command goes to a thread for it (the loop never waits on the database),
    and the next command, with the check fresh, stays on the loop."""
    book = gw.services.ledger.rules
    counted_in: list[int] = []
    real_count = book._count  # type: ignore[attr-defined]

    def count() -> int:
        counted_in.append(threading.get_ident())
        return int(real_count())

    monkeypatch.setattr(book, "_count", count)
    monkeypatch.setattr(book, "_checked", 0.0)  # the refresh is due
    sent = threads_used(monkeypatch)
    c = context(gw)
    asyncio.run(c.command(earn_points, gw.services.ledger, earn("k-r1", "p-r1")))
    assert counted_in and all(ident != threading.main_thread().ident for ident in counted_in)
    assert len(sent) == 1
    asyncio.run(c.command(earn_points, gw.services.ledger, earn("k-r2", "p-r2")))
    assert len(sent) == (1 if BACKEND == "sqlite" else 2)
    assert operations(gw, "k-r1") == operations(gw, "k-r2") == 1


@pytest.mark.skipif(BACKEND != "sqlite", reason="group commit is SQLite's")
def test_one_key_twice_in_one_batch_is_one_operation_and_one_replay(gw: Gateway) -> None:
    committed: list[tuple[str, str]] = []
    gw.services.ledger.on_commit = lambda kind, partner: committed.append((kind, partner))
    writer = writer_for(gw.services.engine)
    assert writer is not None
    started, release = threading.Event(), threading.Event()

    def gate(conn: Connection) -> None:
        started.set()
        assert release.wait(WAIT_S)

    async def both() -> list[Any]:
        held = writer.submit(gate)  # the writer is busy: the two earns queue into one batch
        assert await asyncio.to_thread(started.wait, WAIT_S)
        batches = writer.stats.batches
        c = context(gw)
        answers = [asyncio.ensure_future(c.command(earn_points, gw.services.ledger,
                                                   earn("same-key", "p-3")))
                   for _ in range(2)]
        await asyncio.sleep(0.05)  # both tasks ran up to their await (nothing to do but queue)
        assert not any(a.done() for a in answers)  # no answer before its batch is durable
        release.set()
        done = await asyncio.gather(*answers)
        held.result(WAIT_S)
        assert writer.stats.batches == batches + 2  # the gate's batch, then one for both
        assert writer.stats.largest >= 2
        return done

    first, second = asyncio.run(both())
    assert to_json(first) == to_json(second) and first.points == 120
    assert operations(gw, "same-key") == 1
    assert committed == [("earn", "grocery")]  # one operation; the other answer is its replay
    assert verify_ledger(gw.services.engine).ok
