"""Group commit for SQLite: concurrent write units share one transaction and one fsync.

A durable SQLite COMMIT (WAL, ``synchronous=FULL``) costs one fsync, and SQLite admits one
writer at a time, so under load each command waits for every earlier one's fsync in turn. Here
one writer thread per engine takes every unit of work queued while it was busy (at most
``MAX_BATCH``), opens one ``BEGIN IMMEDIATE``, runs each unit inside its own SAVEPOINT, and
commits once (DESIGN §11, docs/decisions/012-sqlite-group-commit.md):

* a unit that raises has only its savepoint rolled back; its caller gets the exception and the
  neighbouring units are unaffected;
* no caller hears its result before the COMMIT that holds its writes returned: an answer is
  never given for writes that a crash could still lose;
* if the COMMIT (or the batch's BEGIN) fails, every unit of the batch fails with that error,
  and nothing of the batch is stored, so each caller may retry;
* units run in submission order, so a later unit sees an earlier one's writes;
* the batch holds the engine's writer lock (``gateway.db.uow``) throughout, so a write unit of
  work elsewhere in the process never interleaves with it; other processes meet SQLite's busy
  timeout, as before.

The writer thread starts on first use and stops after ``IDLE_S`` without work (an engine per
test would otherwise leave a thread each); ``stop`` drains what is queued and stops it now.
PostgreSQL does not use this: its commits already run concurrently."""

from __future__ import annotations

import asyncio
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from gateway.db.uow import acquire_writer, holds_a_writer_lock, release_writer, writer_lock

R = TypeVar("R")

MAX_BATCH = 64  # bounds one batch's latency and the work lost to a failed COMMIT
IDLE_S = 2.0

Work = Callable[[Connection], Any]


@dataclass
class _Unit:
    work: Work
    future: Future[Any] = field(default_factory=Future)


@dataclass
class BatchStats:
    """Counts since the writer was made (tests and the benchmark notes read them)."""

    batches: int = 0
    units: int = 0
    largest: int = 0


class GroupCommit:
    """The group-commit writer of one SQLite engine (``writer_for`` hands out one per engine)."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH,
                 idle_s: float = IDLE_S) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("group commit is for SQLite; PostgreSQL commits concurrently")
        self._engine = engine
        self._lock = writer_lock(engine)
        self._max_batch = max_batch
        self._idle_s = idle_s
        self._queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._state = threading.Lock()  # guards _thread and _stopped against an idle exit
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.stats = BatchStats()

    def submit(self, work: Callable[[Connection], R]) -> Future[R]:
        """Queue ``work`` (run with the batch's open connection, inside its own savepoint);
        the future resolves once the batch holding it is durable, or fails."""
        unit = _Unit(work)
        with self._state:
            if self._stopped:
                raise RuntimeError("the group-commit writer is stopped")
            self._queue.put(unit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name="gateway-group-commit")
                self._thread.start()
        return unit.future

    def submit_async(self, work: Callable[[Connection], R]) -> asyncio.Future[R]:
        """``submit`` from the event loop: the returned asyncio future is completed on the loop
        (``call_soon_threadsafe``) once the batch holding ``work`` is durable, so the caller
        waits without a thread. Cancelling it before the writer takes ``work`` skips it."""
        return asyncio.wrap_future(self.submit(work), loop=asyncio.get_running_loop())

    def run(self, work: Callable[[Connection], R]) -> R:
        """``submit`` and wait for the durable result (or the unit's exception)."""
        if threading.current_thread() is self._thread or holds_a_writer_lock():
            # Waiting here for the writer would deadlock (it needs this thread's lock).
            raise RuntimeError("a write unit may not wait for the group-commit writer")
        return self.submit(work).result()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what is queued, and end the writer thread."""
        with self._state:
            self._stopped = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    # --- the writer thread -------------------------------------------------------------------
    def _serve(self) -> None:
        # One connection while work keeps coming (a checkout and its reset per batch cost as
        # much as a unit); returned to the pool whenever the queue runs dry or a batch failed.
        conn: Connection | None = None
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                if conn is None:
                    try:
                        conn = self._engine.connect().execution_options(
                            sqlite_begin="IMMEDIATE")
                    except Exception as exc:  # no database: this batch fails, the writer lives
                        _fail(batch, exc)
                        continue
                if not self._run_batch(conn, batch) or self._queue.empty():
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def _take(self) -> list[_Unit] | None:
        """The next batch: block for one unit, then take what else is queued (no waiting for
        more: the batch grows by itself while the previous one is in its fsync)."""
        try:
            first = self._queue.get(timeout=self._idle_s)
        except queue.Empty:
            with self._state:
                if self._queue.empty():  # a submit in between would find no thread otherwise
                    self._thread = None
                    return None
            return self._take()
        if first is None:
            return self._finish()
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                unit = self._queue.get_nowait()
            except queue.Empty:
                break
            if unit is None:  # stop: run this batch and the rest, then end
                self._queue.put(None)
                break
            batch.append(unit)
        return batch

    def _finish(self) -> list[_Unit] | None:
        """After ``stop``: whatever was queued before it still runs, then the thread ends."""
        rest: list[_Unit] = []
        while True:
            try:
                unit = self._queue.get_nowait()
            except queue.Empty:
                break
            if unit is not None:
                rest.append(unit)
        if rest:
            self._queue.put(None)
            for unit in rest[self._max_batch:]:
                self._queue.put(unit)  # after the sentinel: drained by the next _finish
            return rest[: self._max_batch]
        with self._state:
            self._thread = None
        return None

    def _run_batch(self, conn: Connection, batch: list[_Unit]) -> bool:
        """Run and commit one batch, then resolve its futures; False if the batch failed."""
        live = [unit for unit in batch if unit.future.set_running_or_notify_cancel()]
        if not live:
            return True
        outcomes: list[tuple[bool, Any]] = []
        assert self._lock is not None
        acquire_writer(self._lock)
        try:
            with conn.begin():
                raw = conn.connection.driver_connection
                for unit in live:
                    outcomes.append(_in_savepoint(conn, raw, unit.work))
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the batch is stored
            _fail(live, exc, running=True)
            if not isinstance(exc, Exception):
                raise
            return False
        finally:
            release_writer(self._lock)
        self.stats.batches += 1
        self.stats.units += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        for observe in _OBSERVERS.get(self._engine, ()):
            observe(len(live))
        for unit, (ok, value) in zip(live, outcomes, strict=True):
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)
        return True


def _fail(units: list[_Unit], exc: BaseException, *, running: bool = False) -> None:
    for unit in units:
        if running or unit.future.set_running_or_notify_cancel():
            unit.future.set_exception(exc)


def _in_savepoint(conn: Connection, raw: Any, work: Work) -> tuple[bool, Any]:
    """Run one unit in a savepoint: (True, its result), or (False, its exception) with its
    writes undone. The savepoint is issued on the driver's connection (~3 µs, where
    ``begin_nested`` costs ~80 µs a unit); SQLAlchemy's own savepoints nest inside it. A
    savepoint that cannot be rolled back, or a unit that leaves a savepoint of its own open,
    fails the whole batch."""
    raw.execute("SAVEPOINT group_commit_unit")
    try:
        result = work(conn)
    except Exception as exc:
        raw.execute("ROLLBACK TO group_commit_unit")
        raw.execute("RELEASE group_commit_unit")
        if conn.in_nested_transaction():
            raise RuntimeError("a unit left a savepoint open") from exc
        return False, exc
    if conn.in_nested_transaction():
        raise RuntimeError("a unit left a savepoint open")
    raw.execute("RELEASE group_commit_unit")
    return True, result


_WRITERS: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
# Called with the number of commands of each committed batch (the app's /metrics histogram).
_OBSERVERS: weakref.WeakKeyDictionary[Engine, list[Callable[[int], None]]] = (
    weakref.WeakKeyDictionary())
_WRITERS_GUARD = threading.Lock()


def database_serialises_keys(engine: Engine) -> bool:
    """Whether the write transaction itself queues duplicates of one idempotency key across
    processes (PostgreSQL's advisory lock), so no shared in-flight lock is needed."""
    return engine.dialect.name == "postgresql"


def writer_for(engine: Engine) -> GroupCommit | None:
    """The engine's group-commit writer, made on first use; None on PostgreSQL, where each
    unit of work commits on its own."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITERS_GUARD:
        writer = _WRITERS.get(engine)
        if writer is None or writer._stopped:
            writer = _WRITERS[engine] = GroupCommit(engine)
        return writer


def observe_batches(engine: Engine, observer: Callable[[int], None]) -> None:
    """Have ``observer`` called, in the writer thread, with the size of every batch the
    engine's writer commits from now on (whichever writer instance it is)."""
    with _WRITERS_GUARD:
        _OBSERVERS.setdefault(engine, []).append(observer)


def stop_writer(engine: Engine, timeout: float | None = 30.0) -> None:
    """Drain and stop the engine's writer, if it has one (the app's shutdown)."""
    with _WRITERS_GUARD:
        writer = _WRITERS.pop(engine, None)
    if writer is not None:
        writer.stop(timeout)
