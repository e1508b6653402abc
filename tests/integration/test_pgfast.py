"""The pipelined write path on PostgreSQL (``gateway.db.pgfast``): queued statements answer as
SQLAlchemy would, an error of a queued write still fails the transaction it belongs to (and
nothing of it is stored), a savepoint sees its own errors inside its ``with`` block, and the
connection goes back to the pool as it came (autocommit off)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.db import pgfast
from gateway.db import tables as t
from gateway.db.engine import make_engine
from gateway.db.pgfast import LazyResult, PipelinedConnection, transact
from tests.support import harness

pytestmark = pytest.mark.skipif(harness.BACKEND != "postgresql",
                                reason="the pipelined path exists only on PostgreSQL")

_INSERT = insert(t.accounts)
_BY_CODE = select(t.accounts.c.code, t.accounts.c.balance).where(
    t.accounts.c.code.in_(bindparam("codes", expanding=True))).order_by(t.accounts.c.code)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return harness.track(make_engine(harness.database_url(tmp_path)))


def _account(code: str, balance: int = 0) -> dict[str, Any]:
    return {"code": code, "kind": "wallet", "member_id": None, "partner_id": None,
            "balance": balance}


def _warm(engine: Engine) -> None:
    """A prebuilt statement takes the raw path from its second use on."""
    def body(conn: Connection) -> None:
        conn.execute(_INSERT, _account("warm", 1))
        conn.execute(_BY_CODE, {"codes": ["warm"]}).all()
    transact(engine, body)


def _codes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(t.accounts.c.code)).scalars())


def test_queued_statements_answer_like_sqlalchemy(engine: Engine) -> None:
    _warm(engine)

    def body(conn: Connection) -> list[tuple[str, int]]:
        assert isinstance(conn, PipelinedConnection)
        conn.execute(_INSERT, _account("a", 5))
        conn.execute(_INSERT, _account("b", 7))
        result = conn.execute(_BY_CODE, {"codes": ["a", "b", "warm"]})
        assert isinstance(result, LazyResult)  # queued, not run through SQLAlchemy
        rows = [(row.code, row.balance) for row in result.all()]
        assert conn.round_trips == 1  # BEGIN, two inserts and the read: one pipeline
        return rows

    assert transact(engine, body) == [("a", 5), ("b", 7), ("warm", 1)]
    assert _codes(engine) == ["a", "b", "warm"]


def test_a_queued_write_that_fails_fails_its_transaction(engine: Engine) -> None:
    _warm(engine)

    def body(conn: Connection) -> None:
        conn.execute(_INSERT, _account("c"))
        conn.execute(_INSERT, _account("warm"))  # UNIQUE(code): fails at the COMMIT's flush

    with pytest.raises(IntegrityError):
        transact(engine, body)
    assert _codes(engine) == ["warm"]  # "c" rolled back with it
    with engine.connect() as conn:  # the pooled connection is as it was lent
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection) and driver.autocommit is False


def test_a_savepoint_sees_its_own_error_inside_its_block(engine: Engine) -> None:
    _warm(engine)
    caught: list[str] = []

    def body(conn: Connection) -> None:
        conn.execute(_INSERT, _account("d"))
        try:
            with conn.begin_nested():
                conn.execute(_INSERT, _account("warm"))
        except IntegrityError:
            caught.append("duplicate")
        conn.execute(_INSERT, _account("e"))

    transact(engine, body)
    assert caught == ["duplicate"]
    assert _codes(engine) == ["d", "e", "warm"]


def test_a_transaction_waits_for_a_lock_only_so_long(engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipelined transaction bounds its lock waits (``LOCK_TIMEOUT``, so a transaction
    stamped before midnight cannot commit into a day settlement already rolled up): a row lock
    held elsewhere past the bound fails the transaction whole."""
    _warm(engine)
    monkeypatch.setattr(pgfast, "LOCK_TIMEOUT", "SET LOCAL lock_timeout = '200ms'")
    lock = select(t.accounts.c.code).where(t.accounts.c.code == "warm").with_for_update()

    def body(conn: Connection) -> None:
        conn.execute(_INSERT, _account("f"))
        conn.execute(lock).all()

    with engine.connect() as holder:
        holder.begin()
        holder.execute(lock).all()  # another transaction holds the row
        with pytest.raises(OperationalError, match="lock timeout"):
            transact(engine, body)
        holder.rollback()
    assert _codes(engine) == ["warm"]  # "f" went with it
    transact(engine, body)  # the lock gone, the same body commits
    assert _codes(engine) == ["f", "warm"]
