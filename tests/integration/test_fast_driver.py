"""The raw driver (``gateway.db.fast``) answers every prebuilt statement of the ledger's
repository exactly as SQLAlchemy does: the same rows, values of the same types (aware UTC
datetimes included), the same column names, the same rowcounts and the same stored effects.

It runs on a SQLite file in both passes (the raw path exists only on SQLite), over a ledger
made by the real commands: earns (one pending), a redeem, a hold, a return."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.base import Executable

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.fast import FastConnection, FastResult, execute_rows, insert_values
from gateway.ledger import lot_repository, repository
from gateway.ledger.chart import MEMBER_KINDS, AccountKind, member_account, partner_account
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.holds import authorise_redemption
from gateway.ledger.model import EarnPoints, RedeemPoints, ReturnPurchase
from gateway.ledger.service import earn_points, redeem_points, return_purchase
from gateway.promotions import repository as promotions_repository
from gateway.promotions.repository import AwardRow
from tests.support import harness
from tests.support.harness import NOW, track

LATER = NOW + timedelta(days=400)


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    settings = harness.test_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'fast.db'}")
    gateway = build(settings, clock=FixedClock(NOW))
    track(gateway.services.engine)
    engine, clock, ctx = gateway.services.engine, gateway.services.clock, gateway.services.ledger
    for customer in ("g-1", "g-2"):
        enrol_customer(engine, clock, "grocery", customer)
    for n in range(3):
        earn_points(ctx, EarnPoints("grocery", "g-1", Money(50_000 + n, "UAH"), "store",
                                    f"p-{n}", f"k-{n}"))
    redeem_points(ctx, RedeemPoints("grocery", "g-1", 60, Money(100_000, "UAH"), "r-1"))
    authorise_redemption(ctx, RedeemPoints("grocery", "g-1", 50, Money(100_000, "UAH"), "a-1"))
    return_purchase(ctx, ReturnPurchase("grocery", "p-1", Money(20_000, "UAH"), "ret-1"))
    return gateway


@pytest.fixture
def conn(gw: Gateway) -> Iterator[Connection]:
    with gw.services.engine.connect() as connection:
        connection.begin()
        yield connection
        connection.rollback()


def the_data(conn: Connection) -> dict[str, Any]:
    member = str(conn.execute(select(t.members.c.id)).scalars().first())
    ops = [str(r) for r in conn.execute(select(t.operations.c.id)
                                         .order_by(t.operations.c.id)).scalars()]
    lot_ids = [int(r) for r in conn.execute(select(t.lots.c.id)).scalars()]
    wallet = int(conn.execute(select(t.accounts.c.id).where(
        t.accounts.c.code == member_account(member, AccountKind.WALLET))).scalar_one())
    debt = int(conn.execute(select(t.accounts.c.id).where(
        t.accounts.c.code == member_account(member, AccountKind.DEBT))).scalar_one())
    spendable = int(conn.execute(select(t.lots.c.id).where(t.lots.c.remaining > 1)
                                 .order_by(t.lots.c.id)).scalars().first())
    return {"member": member, "ops": ops, "lots": lot_ids, "wallet": wallet, "debt": debt,
            "spendable": spendable}


def reads(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    member = d["member"]
    return {
        "_ACCOUNT_BY_CODE": {"code": member_account(member, AccountKind.WALLET)},
        "_MEMBER_ACCOUNTS": {"codes": [member_account(member, k) for k in MEMBER_KINDS]},
        "_LOCK_ACCOUNT": {"code": member_account(member, AccountKind.WALLET)},
        "_FIND_BY_KEY": {"partner_id": "grocery", "key": "k-1"},
        "_BY_ID": {"ids": [*d["ops"][:2], "op-none"]},
        "_RULE_OF": {"id": d["ops"][0]},
        "_PURCHASE_OPERATIONS": {"partner_id": "grocery", "purchase_id": "p-1",
                                 "kinds": ["earn", "return"]},
        "_EARNED_BETWEEN": {"member_id": member, "partner_id": "grocery",
                            "start": NOW - timedelta(days=1), "end": NOW + timedelta(days=1),
                            "issued": partner_account("grocery", AccountKind.ISSUED)},
        "_SPENDABLE_LOTS": {"member_id": member, "at": NOW},
        "_LIVE_LOTS": {"members": [member]},
        "_LOTS_BY_ID": {"lots": d["lots"]},
        "_LOTS_OF_OPERATION": {"operation": d["ops"][0]},
        "_PENDING_OF": {"lots": d["lots"]},
        "_ANYTHING_DUE": {"member_id": member, "at": LATER},
        "_MOVEMENTS_OF": {"operations": d["ops"]},
        "_MOVEMENTS_BY_OPERATION": {"operations": d["ops"]},
        "_RESTORES_OF": {"operations": d["ops"]},
    }


def writes(d: dict[str, Any]) -> dict[str, tuple[dict[str, Any], Any]]:
    """Each write statement, its parameters and the table whose rows show its effect."""
    op, lot = d["ops"][0], d["spendable"]
    operation = {column.name: None for column in t.operations.columns}
    operation.update(id="op-fast", partner_id="grocery", member_id=d["member"], kind="earn",
                     idempotency_key="k-fast", points=5, occurred_at=NOW, recorded_at=NOW,
                     result="{}")
    return {
        "_INSERT_TRANSFER": ({"operation_id": op, "debit_account_id": d["wallet"],
                              "credit_account_id": d["debt"], "amount": 3,
                              "recorded_at": NOW}, t.transfers),
        "_MOVE_BALANCE": ({"account_id": d["wallet"], "delta": 7}, t.accounts),
        "_INSERT_TRANSFERS_SQLITE": ({"operation_id": op, "recorded_at": NOW, "rows": json.dumps(
            [[d["wallet"], d["debt"], 3], [d["debt"], d["wallet"], 2]])}, t.transfers),
        "_MOVE_BALANCES_SQLITE": ({"deltas": json.dumps([[d["wallet"], 7], [d["debt"], -2]])},
                                  t.accounts),
        "_INSERT_OPERATION": (operation, t.operations),
        "_INSERT_LOT": ({"member_id": d["member"], "origin_partner_id": "grocery",
                         "operation_id": op, "points": 4, "remaining": 4, "earned_at": NOW,
                         "available_at": NOW, "expires_at": LATER, "pending": 0,
                         "merged_from": None}, t.lots),
        "_ADD_LOT": ({"member_id": d["member"], "origin_partner_id": "grocery",
                      "operation_id": op, "points": 5, "remaining": 5, "earned_at": NOW,
                      "available_at": NOW, "expires_at": LATER, "pending": 0,
                      "merged_from": None}, t.lots),
        "_INSERT_LOT_MOVEMENT": ({"lot_id": lot, "operation_id": op, "points": -1,
                                  "recorded_at": NOW}, t.lot_movements),
        "_MOVE_LOT": ({"lot_id": lot, "delta": -1}, t.lots),
        "_RELEASE_LOTS": ({"lots": d["lots"]}, t.lots),
    }


# The ledger's prebuilt statements: its repository's and its lots repository's.
MODULES = (repository, lot_repository)


def prebuilt() -> set[str]:
    """Every prebuilt statement but PostgreSQL's own text (``_PG``), which this SQLite
    connection cannot run: the PostgreSQL pass runs it in every multi-transfer earn."""
    names = [name for module in MODULES for name, value in vars(module).items()
             if name.startswith("_") and isinstance(value, Executable)
             and not name.endswith("_PG")]
    assert len(names) == len(set(names)), "one statement name in two modules"
    return set(names)


def statement_named(name: str) -> Any:
    (statement,) = [vars(m)[name] for m in MODULES if name in vars(m)]
    return statement


def run_fast(conn: Connection, statement: Any, params: dict[str, Any]) -> Any:
    """Through the raw driver: once to be seen (its effect undone), again to take the raw
    path."""
    fast = FastConnection(conn)
    first = conn.begin_nested()
    fast.execute(statement, params)
    first.rollback()
    result = fast.execute(statement, params)
    assert isinstance(result, FastResult), "a prebuilt statement fell back to SQLAlchemy"
    return result


def same_rows(got: list[Any], expected: list[Any]) -> None:
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]
    assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in expected]
    assert [[getattr(v, "tzinfo", None) for v in r] for r in got] == [
        [getattr(v, "tzinfo", None) for v in r] for r in expected]
    assert [r._asdict() for r in got] == [dict(r._mapping) for r in expected]


def test_every_prebuilt_statement_is_covered(conn: Connection) -> None:
    d = the_data(conn)
    assert set(reads(d)) | set(writes(d)) | {"_ADVISORY_LOCK"} == prebuilt()


def test_reads_answer_as_sqlalchemy_does(conn: Connection) -> None:
    d = the_data(conn)
    nonempty = 0
    for name, params in reads(d).items():
        statement = statement_named(name)
        expected = conn.execute(statement, params).all()
        got = run_fast(conn, statement, params).all()
        same_rows(got, expected)
        nonempty += bool(expected)
    assert nonempty >= 13, "the data left most statements answering nothing"


def test_writes_store_what_sqlalchemy_stores(conn: Connection) -> None:
    d = the_data(conn)
    for name, (params, table) in writes(d).items():
        statement = statement_named(name)
        order = list(table.primary_key.columns)
        outcomes = []
        for path in ("sqlalchemy", "fast"):
            savepoint = conn.begin_nested()
            if path == "sqlalchemy":
                result = conn.execute(statement, params)
            else:
                result = run_fast(conn, statement, params)
            returned = [tuple(r) for r in result.all()] if name == "_INSERT_LOT" else None
            stored = [tuple(r) for r in conn.execute(select(table).order_by(*order)).all()]
            outcomes.append((result.rowcount, returned, stored))
            savepoint.rollback()
        assert outcomes[0] == outcomes[1], name
        assert outcomes[0][0] >= 1, name


def test_single_value_accessors_agree(conn: Connection) -> None:
    d = the_data(conn)
    params = reads(d)["_EARNED_BETWEEN"]
    expected = conn.execute(repository._EARNED_BETWEEN, params)
    total = expected.scalar_one()
    got = run_fast(conn, repository._EARNED_BETWEEN, params)
    assert got.scalar_one() == total > 0
    assert got.scalar() == got.scalar_one_or_none() == got.one()[0] == total
    assert got.first().coalesce_1 == total
    missing = run_fast(conn, repository._FIND_BY_KEY, {"partner_id": "grocery", "key": "none"})
    assert missing.first() is None and missing.one_or_none() is None
    assert missing.scalar() is None


def test_driver_errors_are_sqlalchemys(conn: Connection) -> None:
    d = the_data(conn)
    operation = writes(d)["_INSERT_OPERATION"][0] | {"id": d["ops"][0]}  # a duplicate id
    fast = FastConnection(conn)
    for _ in range(2):
        savepoint = conn.begin_nested()
        with pytest.raises(IntegrityError):
            fast.execute(repository._INSERT_OPERATION, operation)
        savepoint.rollback()
    with pytest.raises(OperationalError):  # pg_advisory_xact_lock is not SQLite's
        run_fast(conn, repository._ADVISORY_LOCK, {"name": "x"})


def test_statements_built_per_call_and_listened_engines_go_through_sqlalchemy(
        gw: Gateway, conn: Connection) -> None:
    fast = FastConnection(conn)
    for _ in range(2):
        result = fast.execute(select(t.members.c.id).where(t.members.c.id != "x"))
        assert not isinstance(result, FastResult)
        assert len(result.all()) == 2

    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as listened:
            fast = FastConnection(listened)
            for _ in range(2):
                fast.execute(repository._FIND_BY_KEY, {"partner_id": "grocery", "key": "k-1"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [sql for sql in seen if "FROM operations" in sql] == [
        str(repository._FIND_BY_KEY.compile(dialect=engine.dialect))] * 2


def test_execute_rows_stores_what_sqlalchemys_executemany_stores(conn: Connection) -> None:
    """``execute_rows`` (an earn's promotion_awards rows, one executemany): the raw path binds
    the shared parameters once and each row as it is; the rows stored, their order and their
    types (``recorded_at`` an aware UTC datetime) are SQLAlchemy's executemany's."""
    d = the_data(conn)
    conn.execute(insert(t.campaigns), [{"id": c, "owner": "grocery", "created_at": NOW,
                                        "created_by": "test"} for c in ("c-a", "c-b")])
    common = {"operation_id": d["ops"][0], "partner_id": "grocery", "recorded_at": NOW}
    rows = [AwardRow("c-b", 2, "grocery", d["member"], 7, 1, None),
            AwardRow("c-a", 1, "coalition", d["member"], -3, -1, "GIFT-1"),
            AwardRow("c-b", 2, "grocery", d["member"], 0, 0, "holdout")]
    statement = promotions_repository._INSERT_AWARD
    stored = []
    for path in ("sqlalchemy", "fast", "fast"):  # the first fast run sees it, the second is raw
        savepoint = conn.begin_nested()
        target = conn if path == "sqlalchemy" else FastConnection(conn)
        execute_rows(target, statement, common, AwardRow._fields, rows)
        found = conn.execute(select(t.promotion_awards).order_by(t.promotion_awards.c.id)).all()
        stored.append([tuple(r)[1:] for r in found])  # ids aside: each run takes new ones
        savepoint.rollback()
    assert stored[0] == stored[1] == stored[2]
    assert [r[1] for r in stored[0]] == ["c-b", "c-a", "c-b"]
    assert stored[0][1][-1] == NOW and stored[0][1][-1].tzinfo is not None
    fast = FastConnection(conn)
    assert fast.execute_rows(statement, common, AwardRow._fields, rows), "not the raw path"
    with pytest.raises(IntegrityError):  # an unknown campaign: the driver's error, wrapped
        fast.execute_rows(statement, common, AwardRow._fields,
                          [AwardRow("nope", 1, "grocery", d["member"], 1, 1)])


def test_insert_awards_one_multi_row_insert_stores_what_executemany_stores(
        conn: Connection) -> None:
    """``insert_awards`` on the raw path (one ``INSERT ... VALUES (...), (...)``, in chunks of
    500) stores, byte for byte in the file, what SQLAlchemy's executemany stores: same rows,
    same order, ``recorded_at`` as the same text; a driver error is wrapped as SQLAlchemy's."""
    d = the_data(conn)
    conn.execute(insert(t.campaigns), [{"id": c, "owner": "grocery", "created_at": NOW,
                                        "created_by": "test"} for c in ("c-a", "c-b")])
    rows = [AwardRow("c-b", 2, "grocery", d["member"], 7, 1, None),
            AwardRow("c-a", 1, "coalition", d["member"], -3, -1, "GIFT-1"),
            AwardRow("c-b", 2, "grocery", d["member"], 0, 0, "holdout")] * 201  # 603: 2 chunks
    raw_text = text("SELECT operation_id, campaign_id, version, funder, partner_id, member_id, "
                    "points, rewards, reward_code, recorded_at FROM promotion_awards ORDER BY id")
    stored = []
    for target in (conn, FastConnection(conn)):
        savepoint = conn.begin_nested()
        promotions_repository.insert_awards(target, d["ops"][0], "grocery", rows, NOW)
        stored.append(conn.execute(raw_text).all())
        savepoint.rollback()
    assert len(stored[0]) == 603 and stored[0] == stored[1]
    assert isinstance(stored[1][0][-1], str)  # the column's own text form, not a datetime
    fast = FastConnection(conn)
    assert insert_values(fast, t.promotion_awards, ("campaign_id",), []) is False
    with pytest.raises(IntegrityError):  # an unknown campaign: the driver's error, wrapped
        promotions_repository.insert_awards(
            fast, d["ops"][0], "grocery",
            [AwardRow("nope", 1, "grocery", d["member"], 1, 1)] * 2, NOW)
