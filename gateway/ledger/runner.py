"""The command runner: each ledger command is one write transaction, run once per (partner,
idempotency key).

The transaction boundary is in one place, :func:`transact`: it opens the write transaction,
runs a *body* on the open connection and commits. A body (replay check, then load -> plan ->
apply) is a function of the open connection and its single 'now'; it never commits and does no
I/O outside that connection, so several bodies may share one transaction (a savepoint each)
without changing a line of them. Everything a command does before its transaction (checking the
request, counting a typed store code, reading the store-code secret) happens before
:func:`run_command` is called."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from gateway.core.errors import IdempotencyKeyReused
from gateway.core.ids import new_id
from gateway.db import pgfast
from gateway.db.batch import writer_for
from gateway.db.fast import fast
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
from gateway.ledger.retry import retrying
from gateway.members.repository import MemberRepository

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
    tx.ledger.insert_operation(record.row(tx.now))


def operation_id() -> str:
    return new_id("op")


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

    def attempt() -> R:
        for tries in range(3):
            try:
                result, replayed = transact(ctx.engine, once)
            except IntegrityError:
                if tries == 2:
                    raise
                continue
            if not replayed and ctx.on_commit is not None:
                ctx.on_commit(kind or "other", partner_id)
            return result
        raise AssertionError("unreachable")

    with ctx.locks.hold(f"idem:{partner_id}:{key}"):
        return retrying(attempt)
