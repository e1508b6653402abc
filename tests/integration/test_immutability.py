"""The database itself refuses to rewrite history (DESIGN §4.2) and to store a balance or a
transfer the ledger guarantees forbid (§4.1, §4.4): raw SQL through the engine, no domain code
in the way. After every refusal the row is exactly what it was."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db.tables import APPEND_ONLY_TABLES
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints, RedeemPoints
from gateway.ledger.service import earn_points, redeem_points
from gateway.ledger.verify import verify_ledger
from tests.support.harness import NOW, ledger_snapshot, make_gateway

# For each append-only table: the column an UPDATE tries to change, and the value it tries.
TAMPER: dict[str, tuple[str, Any]] = {
    "transfers": ("amount", 999_999),
    "lot_movements": ("points", -999_999),
    "operations": ("points", 999_999),
    "rule_versions": ("published_by", "mallory"),
    "audit_log": ("actor", "mallory"),
}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    """A ledger with at least one row in every append-only table."""
    clock = FixedClock(NOW)
    gateway = make_gateway(tmp_path, clock=clock)
    ledger = gateway.services.ledger
    enrol_customer(gateway.services.engine, clock, "grocery", "g-1")
    earn_points(ledger, EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p-1", "e-1"))
    redeem_points(ledger, RedeemPoints("grocery", "g-1", 50, Money(10_000, "UAH"), "r-1"))
    with gateway.services.engine.begin() as conn:  # audit_log has no writer in the ledger yet
        conn.execute(text("INSERT INTO audit_log (at, actor, action, subject, detail) "
                          "VALUES ('2026-11-23 10:00:00', 'test', 'seed', 'x', '{}')"))
    yield gateway
    gateway.services.engine.dispose()


def _rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]


def _execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def test_every_append_only_table_has_both_triggers(gw: Gateway) -> None:
    assert set(TAMPER) <= set(APPEND_ONLY_TABLES)
    # Which (table, event) pairs some trigger guards, read from each backend's catalogue; the
    # refusals themselves are tested below, this proves no table was left out.
    with gw.services.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.execute(text(
                "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            guarded = {(table, event) for table, sql in rows
                       for event in re.findall(r"\b(UPDATE|DELETE)\b", sql.upper())}
        else:
            guarded = {(table, event) for table, event in conn.execute(text(
                "SELECT event_object_table, event_manipulation FROM information_schema.triggers"
                " WHERE action_timing = 'BEFORE'")).all()}
    for table in APPEND_ONLY_TABLES:
        assert {(table, "UPDATE"), (table, "DELETE")} <= guarded, table


@pytest.mark.parametrize("table", sorted(TAMPER))
def test_update_is_refused(gw: Gateway, table: str) -> None:
    engine = gw.services.engine
    before = _rows(engine, table)
    assert before, f"fixture left {table} empty; the test would prove nothing"
    column, value = TAMPER[table]
    with pytest.raises(DatabaseError, match="append-only"):
        _execute(engine, f"UPDATE {table} SET {column} = :v", v=value)
    assert _rows(engine, table) == before


@pytest.mark.parametrize("table", sorted(TAMPER))
def test_delete_is_refused(gw: Gateway, table: str) -> None:
    engine = gw.services.engine
    before = _rows(engine, table)
    assert before
    with pytest.raises(DatabaseError, match="append-only"):
        _execute(engine, f"DELETE FROM {table}")
    assert _rows(engine, table) == before


def test_refusal_rolls_back_the_whole_transaction(gw: Gateway) -> None:
    """A tamper attempt after a legitimate-looking change in the same transaction leaves
    neither behind: the trigger aborts, the unit of work rolls back."""
    snapshot = ledger_snapshot(gw)
    with pytest.raises(DatabaseError, match="append-only"), gw.services.engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET balance = balance + 5 WHERE kind = 'wallet'"))
        conn.execute(text("DELETE FROM transfers"))
    assert ledger_snapshot(gw) == snapshot
    assert verify_ledger(gw.services.engine).ok


def _ids(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        wallet = conn.execute(text("SELECT id FROM accounts WHERE kind = 'wallet'")).scalar_one()
        debt = conn.execute(text("SELECT id FROM accounts WHERE kind = 'debt'")).scalar_one()
        issued = conn.execute(text(
            "SELECT id FROM accounts WHERE code = 'partner:grocery:issued'")).scalar_one()
        op = conn.execute(text("SELECT id FROM operations WHERE kind = 'earn'")).scalar_one()
    return {"wallet": wallet, "debt": debt, "issued": issued, "op": op}


INSERT_TRANSFER = ("INSERT INTO transfers (operation_id, debit_account_id, credit_account_id, "
                   "amount, recorded_at) VALUES (:op, :d, :c, :amount, '2026-11-23 10:00:00')")


@pytest.mark.parametrize("amount", [0, -1, -120])
def test_zero_or_negative_transfer_is_refused(gw: Gateway, amount: int) -> None:
    engine, ids = gw.services.engine, _ids(gw.services.engine)
    before = ledger_snapshot(gw)
    with pytest.raises(DatabaseError, match="transfer_amount_positive"):
        _execute(engine, INSERT_TRANSFER, op=ids["op"], d=ids["issued"], c=ids["wallet"],
                 amount=amount)
    assert ledger_snapshot(gw) == before


def test_transfer_to_the_same_account_is_refused(gw: Gateway) -> None:
    engine, ids = gw.services.engine, _ids(gw.services.engine)
    before = ledger_snapshot(gw)
    with pytest.raises(DatabaseError, match="transfer_distinct_accounts"):
        _execute(engine, INSERT_TRANSFER, op=ids["op"], d=ids["wallet"], c=ids["wallet"],
                 amount=10)
    assert ledger_snapshot(gw) == before


def test_a_valid_transfer_is_accepted_by_the_same_statement(gw: Gateway) -> None:
    """The refusals above are the constraints, not a broken statement."""
    engine, ids = gw.services.engine, _ids(gw.services.engine)
    count = len(_rows(engine, "transfers"))
    _execute(engine, INSERT_TRANSFER, op=ids["op"], d=ids["issued"], c=ids["wallet"], amount=1)
    assert len(_rows(engine, "transfers")) == count + 1


@pytest.mark.parametrize(("kind", "bad"), [("wallet", -1), ("held", -1), ("pending", -5),
                                           ("debt", 1)])
def test_member_balance_on_the_wrong_side_of_zero_is_refused(
    gw: Gateway, kind: str, bad: int
) -> None:
    engine = gw.services.engine
    before = ledger_snapshot(gw)
    with pytest.raises(DatabaseError, match="account_balance_sign"):
        _execute(engine, "UPDATE accounts SET balance = :b WHERE kind = :k", b=bad, k=kind)
    assert ledger_snapshot(gw) == before


def test_partner_account_never_stores_a_balance(gw: Gateway) -> None:
    """Hot partner accounts are derived by aggregation; a stored balance there is refused."""
    before = ledger_snapshot(gw)
    with pytest.raises(DatabaseError, match="account_balance_sign"):
        _execute(gw.services.engine,
                 "UPDATE accounts SET balance = 7 WHERE code = 'partner:grocery:issued'")
    assert ledger_snapshot(gw) == before


def test_lot_remaining_out_of_range_is_refused(gw: Gateway) -> None:
    before = ledger_snapshot(gw)
    for value in ("-1", "points + 1"):
        with pytest.raises(DatabaseError, match="lot_remaining_range"):
            _execute(gw.services.engine, f"UPDATE lots SET remaining = {value}")
    assert ledger_snapshot(gw) == before
