"""The command runner: each ledger command is one write transaction, run once per (partner,
idempotency key).

The transaction boundary is in one place, :func:`transact`: it opens the write transaction,
runs a *body* on the open connection and commits. A body (replay check, then load -> plan ->
apply) is a function of the open connection and its single 'now'; it never commits and does no
I/O outside that connection, so several bodies may share one transaction (a savepoint each)
without changing a line of them. Everything a command does before its transaction (checking the
request, counting a typed store code, reading the store-code secret) happens before
:func:`run_command` is called.

On SQLite with a group-commit writer a partner command need not leave the event loop at all
(:func:`on_the_loop`): its checks run on the loop, :func:`run_command` queues the body with the
writer and raises :class:`WriteQueued`, and the resolver awaits the durable result
(docs/decisions/012)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from gateway.core.errors import IdempotencyKeyReused
from gateway.core.ids import new_id
from gateway.db import pgfast
from gateway.db.batch import GroupCommit, writer_for
from gateway.db.fast import fast
from gateway.db.retry import retrying
from gateway.db.uow import UnitOfWork, holds_a_writer_lock
from gateway.ledger.context import LedgerContext, check_key
from gateway.ledger.model import (
    Earned,
    HoldCaptured,
    HoldPlaced,
    HoldVoided,
    OperationRecord,
    Redeemed,
    Returned,
    from_json,
    request_hash,
)
from gateway.ledger.repository import LedgerRepository
from gateway.members.repository import MemberRepository
from gateway.outbox import emit, operation_event

R = TypeVar("R")

# The operation kind each command records: a key used for one command is reused if sent to
# another, even with the same request (redeem and authorise take the same fields).
_KIND_OF_RESULT: dict[type, str] = {
    Earned: "earn", Redeemed: "redeem", HoldPlaced: "authorise", HoldCaptured: "capture",
    HoldVoided: "void", Returned: "return",
}


@dataclass
class Tx:
    """One open write transaction with its repositories and its single 'now'. No commit here:
    the runner commits, once."""

    conn: Connection
    ledger: LedgerRepository
    members: MemberRepository
    now: datetime

    @classmethod
    def on(cls, conn: Connection, now: datetime) -> Tx:
        return cls(conn, LedgerRepository(conn), MemberRepository(conn), now)


def record_operation(tx: Tx, record: OperationRecord) -> None:
    """The operation's row, and its event in the outbox (decision 029) in the same
    transaction: an event exists if and only if its operation committed."""
    tx.ledger.insert_operation(record.row(tx.now))
    emit(tx.conn, operation_event(record.kind), partner_id=record.partner_id,
         member_id=record.member_id, operation_id=record.id, at=tx.now,
         occurred_at=record.occurred_at, data=operation_payload(record))


def operation_payload(record: OperationRecord) -> dict[str, Any]:
    """What an operation's event carries: its figures, never its stored answer (a consumer
    that needs more reads the operation by id)."""
    data: dict[str, Any] = {"operation_id": record.id, "kind": record.kind,
                            "points": record.points}
    for name in ("purchase_id", "channel", "parent_id", "hold_id", "amount_minor", "currency"):
        value = getattr(record, name)
        if value is not None:
            data[name] = value
    return data


def operation_id() -> str:
    return new_id("op")


# A concurrent duplicate that lost the race on a UNIQUE constraint is run again (then a replay):
# this many runs in all before its IntegrityError propagates.
CONFLICT_RUNS = 3


def on_conflict_rerun(run: Callable[[], R]) -> R:
    """``run`` (one whole transaction), again if a concurrent duplicate made it fail on a UNIQUE
    constraint: the next run finds the winner's row and answers as its replay."""
    for tries in range(1, CONFLICT_RUNS + 1):
        try:
            return run()
        except IntegrityError:
            if tries == CONFLICT_RUNS:
                raise
    raise AssertionError("unreachable")


# --- commands awaited on the event loop (SQLite with a group-commit writer) -------------------
_LOOP: ContextVar[tuple[asyncio.AbstractEventLoop, int] | None] = ContextVar(
    "gateway_ledger_loop", default=None)


class LeaveLoop(BaseException):
    """A command run ``on_the_loop`` needs blocking I/O before its transaction (a typed store
    code's budget and secret): nothing was done yet, so the caller runs it again in a thread."""


class WriteQueued(BaseException):
    """Raised by :func:`run_command` on the loop once the command's body is queued with the
    writer: nothing after ``run_command`` runs (every command ``return``s it), and the caller
    awaits :meth:`outcome`. A BaseException, so an ``except Exception`` on the way cannot
    swallow it."""

    def __init__(self, outcome: Callable[[], Awaitable[Any]]) -> None:
        super().__init__("queued with the group-commit writer")
        self._outcome = outcome

    async def outcome(self) -> Any:
        return await self._outcome()


def loop_writer(engine: Engine) -> GroupCommit | None:
    """The writer a command on the event loop hands its body to; None where writes block this
    thread instead (PostgreSQL, or not on the loop)."""
    marked = _LOOP.get()
    if marked is None or marked[1] != threading.get_ident():
        return None
    return writer_for(engine)


@contextmanager
def on_the_loop(engine: Engine) -> Iterator[bool]:
    """While inside, a command called on this loop thread queues its body with ``engine``'s
    group-commit writer and raises :class:`WriteQueued` instead of blocking; yields whether the
    engine has such a writer (if not, run the command in a thread as before)."""
    if writer_for(engine) is None:
        yield False
        return
    token = _LOOP.set((asyncio.get_running_loop(), threading.get_ident()))
    try:
        yield True
    finally:
        _LOOP.reset(token)


def leave_loop_for_io() -> None:
    """Called before blocking I/O that a command does ahead of its transaction: on the loop,
    raise :class:`LeaveLoop` so the command is run again in a thread."""
    marked = _LOOP.get()
    if marked is not None and marked[1] == threading.get_ident():
        raise LeaveLoop


def transact(engine: Engine, body: Callable[[Connection], R]) -> R:
    """The one transaction boundary of the ledger's writes: open a write transaction, run
    ``body`` on it, commit. A body that raises is rolled back whole.

    On SQLite the body goes to the engine's group-commit writer (``gateway.db.batch``, decision
    012): bodies queued together share one transaction, a savepoint each, and one durable COMMIT
    that happens before any of them returns; a body that raises rolls back its savepoint only.
    A thread that already holds the writer lock (a command run inside another write) keeps the
    direct path. Prebuilt statements run through the raw driver (``gateway.db.fast``). On
    PostgreSQL the body's statements are pipelined (``gateway.db.pgfast``): a round trip only
    where Python needs an answer, the last writes with the COMMIT."""
    if engine.dialect.name == "postgresql":
        return pgfast.transact(engine, body)
    writer = None if holds_a_writer_lock() else writer_for(engine)
    if writer is not None:
        return writer.run(lambda conn: body(fast(conn)))
    with UnitOfWork(engine, write=True) as uow:
        result = body(fast(uow.conn))
        uow.commit()
        return result


def run_command(
    ctx: LedgerContext,
    partner_id: str,
    command: Any,
    result_type: type[R],
    body: Callable[[Tx, str], R],
) -> R:
    """Run ``body`` once per (partner, idempotency key): a replay returns the stored result,
    a reused key with another request is refused, and a concurrent duplicate that loses the
    race on the UNIQUE constraint is retried as a replay (guarantee 5). A transaction that
    PostgreSQL aborts as a deadlock or serialisation failure is run again whole."""
    key: str = command.idempotency_key
    check_key(key)
    fingerprint = request_hash(command)
    kind = _KIND_OF_RESULT.get(result_type)

    def once(conn: Connection) -> tuple[R, bool]:
        """(result, replayed): the key's replay check, then the command's body."""
        tx = Tx.on(conn, ctx.clock.now())
        tx.ledger.lock_key(partner_id, key)
        existing = tx.ledger.find_by_key(partner_id, key)
        if existing is not None:
            if existing.request_hash != fingerprint or existing.kind != (kind or existing.kind):
                raise IdempotencyKeyReused(key)
            return from_json(result_type, existing.result), True
        return body(tx, fingerprint), False

    def answer(outcome: tuple[R, bool]) -> R:
        result, replayed = outcome
        if not replayed and ctx.on_commit is not None:
            ctx.on_commit(kind or "other", partner_id)
        return result

    writer = loop_writer(ctx.engine)
    if writer is not None:
        # On the loop: no in-flight key lock (the one writer thread runs every body of this
        # process in turn, and BEGIN IMMEDIATE serialises processes), no thread waits.
        raise WriteQueued(lambda: _on_writer(writer, once, answer))

    def attempt() -> R:
        return answer(on_conflict_rerun(lambda: transact(ctx.engine, once)))

    with ctx.locks.hold(f"idem:{partner_id}:{key}"):
        return retrying(attempt)


async def _on_writer(writer: GroupCommit, once: Callable[[Connection], tuple[R, bool]],
                     answer: Callable[[tuple[R, bool]], R]) -> R:
    """``once`` run by the writer, awaited without a thread: the future is completed on the loop
    (``call_soon_threadsafe``) after the batch's durable COMMIT; a UNIQUE-constraint loser is
    run again as in :func:`on_conflict_rerun`."""
    for tries in range(1, CONFLICT_RUNS + 1):
        try:
            outcome = await writer.submit_async(lambda conn: once(fast(conn)))
        except IntegrityError:
            if tries == CONFLICT_RUNS:
                raise
            continue
        return answer(outcome)
    raise AssertionError("unreachable")
