"""Group commit on SQLite (``gateway.db.batch``): units queued together share one transaction
and one COMMIT; a failing unit loses only its own writes; a failed COMMIT fails every unit of
its batch and stores none; a later unit sees an earlier one's writes; no future resolves before
its COMMIT; the writer lock keeps other write units of work out of a batch; ``stop`` drains.

A SQLite file in both passes (group commit is SQLite's only). Batches are made deterministic by
a first unit that waits on an event while the others queue behind it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.db.batch import GroupCommit
from gateway.db.engine import make_engine
from gateway.db.uow import UnitOfWork
from tests.support.harness import track

WAIT_S = 10.0


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = track(make_engine(f"sqlite:///{tmp_path / 'batch.db'}"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, parent_id "
            "INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    return engine


@pytest.fixture
def commits(engine: Engine) -> Iterator[list[int]]:
    """One entry per COMMIT the engine's connections issue."""
    seen: list[int] = []

    def record(_: Any) -> None:
        seen.append(1)

    event.listen(engine, "commit", record)
    yield seen
    event.remove(engine, "commit", record)


@pytest.fixture
def writer(engine: Engine) -> Iterator[GroupCommit]:
    writer = GroupCommit(engine)
    yield writer
    writer.stop(WAIT_S)


def insert(name: str, parent: int | None = None) -> Any:
    def unit(conn: Connection) -> int:
        conn.execute(text("INSERT INTO item (name, parent_id) VALUES (:n, :p)"),
                      {"n": name, "p": parent})
        return int(conn.execute(text("SELECT count(*) FROM item")).scalar_one())
    return unit


def stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(n) for n in conn.execute(text("SELECT name FROM item ORDER BY id")).scalars()]


def blocked_batch(writer: GroupCommit,
                  units: list[Any]) -> tuple[threading.Event, list[Future[Any]]]:
    """A first batch held open by its one unit until the event is set, and ``units`` queued
    behind it: they make the next batch, together."""
    started, release = threading.Event(), threading.Event()

    def gate(conn: Connection) -> str:
        started.set()
        assert release.wait(WAIT_S)
        return "gate"

    futures: list[Future[Any]] = [writer.submit(gate)]
    assert started.wait(WAIT_S)
    futures += [writer.submit(unit) for unit in units]
    return release, futures


def test_queued_units_share_one_commit(engine: Engine, writer: GroupCommit,
                                       commits: list[int]) -> None:
    release, futures = blocked_batch(writer, [insert(f"n{i}") for i in range(20)])
    assert not any(f.done() for f in futures[1:])
    release.set()
    answers = [f.result(WAIT_S) for f in futures]
    assert answers == ["gate", *range(1, 21)]  # each unit saw the ones before it in its batch
    assert len(commits) == 2 and writer.stats.batches == 2
    assert writer.stats.largest == 20 and writer.stats.units == 21
    assert stored(engine) == [f"n{i}" for i in range(20)]


def test_concurrent_callers_commit_fewer_times_than_units(
        engine: Engine, writer: GroupCommit, commits: list[int]) -> None:
    barrier = threading.Barrier(16)

    def call(i: int) -> int:
        barrier.wait(WAIT_S)
        return writer.run(insert(f"c{i}"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert sorted(stored(engine)) == sorted(f"c{i}" for i in range(16))
    assert writer.stats.units == 16
    assert len(commits) == writer.stats.batches < 16


def test_a_failing_unit_loses_only_its_own_writes(engine: Engine, writer: GroupCommit) -> None:
    def fails(conn: Connection) -> None:
        insert("doomed")(conn)
        raise ValueError("refused")

    release, futures = blocked_batch(writer, [insert("a"), fails, insert("a"), insert("b")])
    release.set()
    assert futures[1].result(WAIT_S) == 1
    with pytest.raises(ValueError, match="refused"):
        futures[2].result(WAIT_S)
    with pytest.raises(IntegrityError):  # a duplicate name: the database refused this one
        futures[3].result(WAIT_S)
    assert futures[4].result(WAIT_S) == 2
    assert writer.stats.batches == 2
    assert stored(engine) == ["a", "b"]


def test_a_failed_commit_fails_the_whole_batch(engine: Engine, writer: GroupCommit) -> None:
    # The deferred foreign key is checked at COMMIT: the orphan fails it for all three.
    release, futures = blocked_batch(writer, [insert("x"), insert("orphan", parent=7),
                                              insert("y")])
    release.set()
    assert futures[0].result(WAIT_S) == "gate"
    for future in futures[1:]:
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            future.result(WAIT_S)
    assert stored(engine) == []
    assert writer.run(insert("after")) == 1  # the writer goes on with a clean transaction
    assert stored(engine) == ["after"]


def test_no_answer_before_the_commit(engine: Engine, writer: GroupCommit) -> None:
    in_commit, resume = threading.Event(), threading.Event()

    def slow_commit(_: Any) -> None:
        in_commit.set()
        assert resume.wait(WAIT_S)

    future = None
    event.listen(engine, "commit", slow_commit)
    try:
        future = writer.submit(insert("slow"))
        assert in_commit.wait(WAIT_S)
        assert not future.done()
        resume.set()
        assert future.result(WAIT_S) == 1
    finally:
        resume.set()
        event.remove(engine, "commit", slow_commit)


def test_other_write_units_wait_for_the_batch(engine: Engine, writer: GroupCommit) -> None:
    entered, started, release = threading.Event(), threading.Event(), threading.Event()

    def other_writer() -> None:
        with UnitOfWork(engine, write=True) as uow:
            entered.set()
            uow.conn.execute(text("INSERT INTO item (name) VALUES ('other')"))
            uow.commit()

    def batched(conn: Connection) -> int:
        count = insert("batched")(conn)
        started.set()
        assert release.wait(WAIT_S)
        return int(count)

    future = writer.submit(batched)
    assert started.wait(WAIT_S)
    thread = threading.Thread(target=other_writer)
    thread.start()
    assert not entered.wait(0.3)  # the batch holds the process's writer lock
    release.set()
    thread.join(WAIT_S)
    assert entered.is_set() and future.result(WAIT_S) == 1
    assert stored(engine) == ["batched", "other"]


def test_a_write_unit_may_not_wait_for_the_writer(engine: Engine, writer: GroupCommit) -> None:
    with UnitOfWork(engine, write=True), pytest.raises(RuntimeError, match="may not wait"):
        writer.run(insert("deadlock"))


def test_stop_drains_what_is_queued_then_refuses(engine: Engine, writer: GroupCommit) -> None:
    release, futures = blocked_batch(writer, [insert(f"q{i}") for i in range(3)])
    stopper = threading.Thread(target=writer.stop, args=(WAIT_S,))
    stopper.start()
    release.set()
    stopper.join(WAIT_S)
    assert [f.result(0) for f in futures[1:]] == [1, 2, 3]
    with pytest.raises(RuntimeError, match="stopped"):
        writer.submit(insert("late"))
    assert stored(engine) == ["q0", "q1", "q2"]


def test_the_writer_thread_ends_when_idle_and_comes_back(engine: Engine) -> None:
    writer = GroupCommit(engine, idle_s=0.05)
    assert writer.run(insert("one")) == 1
    first = writer._thread
    assert first is not None
    first.join(WAIT_S)
    assert not first.is_alive()
    assert writer.run(insert("two")) == 2
    writer.stop(WAIT_S)
    assert stored(engine) == ["one", "two"]


def test_a_units_own_savepoints_nest_inside_its_savepoint(engine: Engine,
                                                          writer: GroupCommit) -> None:
    def inner_refused(conn: Connection) -> int:
        insert("kept")(conn)
        with pytest.raises(IntegrityError), conn.begin_nested():
            insert("kept")(conn)  # a duplicate: only the inner savepoint is undone
        return 1

    def fails_after_inner(conn: Connection) -> None:
        with conn.begin_nested():
            insert("undone")(conn)
        raise ValueError("after the inner savepoint")

    def leaves_one_open(conn: Connection) -> None:
        conn.begin_nested()

    assert writer.run(inner_refused) == 1
    with pytest.raises(ValueError):
        writer.run(fails_after_inner)
    with pytest.raises(RuntimeError, match="left a savepoint open"):
        writer.run(leaves_one_open)
    assert writer.run(insert("next")) == 2
    assert stored(engine) == ["kept", "next"]


def test_a_database_that_cannot_be_opened_fails_the_batch_not_the_writer(
        tmp_path: Path) -> None:
    engine = track(make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"))
    writer = GroupCommit(engine)
    for _ in range(2):  # the writer thread survives the first failure
        with pytest.raises(OperationalError, match="unable to open"):
            writer.run(insert("nowhere"))
    writer.stop(WAIT_S)
