"""The Alembic migrations are the schema: on this run's backend (SQLite, or PostgreSQL in the PG
pass) an empty database migrated to the head has exactly ``gateway.db.tables.metadata`` and the
append-only triggers; down and up again works; a second upgrade does nothing; a database made
by the old ``create_all`` start-up is adopted (its rows kept, what it lacks added); workers
starting together on one fresh database migrate it once and all succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, insert, inspect, text
from sqlalchemy.exc import DatabaseError

from gateway.db import guards, migrate
from gateway.db import tables as t
from gateway.db.engine import make_engine
from tests.support import harness, servers
from tests.support.harness import NOW

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it (``harness.database_url`` is already migrated on PG)."""
    if harness.BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = servers.postgres()
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        harness.release_databases()  # dispose of this test's engines before the drop
        server.drop_database(name)


def engine_for(url: str) -> Engine:
    return harness.track(make_engine(url))


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), t.metadata))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def trigger_names(engine: Engine) -> set[str]:
    sql = ("SELECT name FROM sqlite_master WHERE type = 'trigger'" if harness.BACKEND == "sqlite"
           else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    with engine.connect() as conn:
        return set(conn.execute(text(sql)).scalars())


def expected_triggers() -> set[str]:
    if harness.BACKEND == "sqlite":
        return {f"{name}_no_{action}" for name in t.APPEND_ONLY_TABLES
                for action in ("update", "delete")}
    return {f"{name}_append_only" for name in t.APPEND_ONLY_TABLES}


def version_rows(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def seed_transfer(engine: Engine) -> None:
    """One partner, two accounts, one operation and the transfer between the accounts."""
    with engine.begin() as conn:
        conn.execute(insert(t.partners).values(id="p", name="P", kind="merchant",
                                               currency="EUR", created_at=NOW))
        conn.execute(insert(t.accounts), [{"id": 1, "code": "a", "kind": "partner_liability"},
                                          {"id": 2, "code": "b", "kind": "partner_liability"}])
        conn.execute(insert(t.operations).values(id="op", partner_id="p", kind="earn", points=1,
                                                 occurred_at=NOW, recorded_at=NOW, result="{}"))
        conn.execute(insert(t.transfers).values(id=1, operation_id="op", debit_account_id=1,
                                                credit_account_id=2, amount=5, recorded_at=NOW))


def create_legacy(engine: Engine) -> None:
    """What ``create_schema`` did before migrations: ``create_all`` and the guards."""
    with engine.begin() as conn:
        t.metadata.create_all(conn)
        for statement in guards.create_statements(conn.dialect.name):
            conn.execute(text(statement))


def test_upgrade_on_empty_database_gives_exactly_the_metadata(empty_url: str) -> None:
    engine = engine_for(empty_url)
    assert migrate.current(engine) is None

    migrate.upgrade(engine)

    assert migrate.current(engine) == migrate.head()
    assert table_names(engine) == set(t.metadata.tables) | {"alembic_version"}
    assert differences(engine) == []
    assert trigger_names(engine) == expected_triggers()


def test_the_comparison_sees_a_missing_index_and_unique(empty_url: str) -> None:
    """Guards the test above: drift in indexes or unique constraints is reported."""
    engine = engine_for(empty_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_transfers_debit"))
    found = {diff[0] for diff in differences(engine)}
    assert "add_index" in found

    if harness.BACKEND == "postgresql":  # SQLite cannot drop a table constraint
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE operations DROP CONSTRAINT uq_operation_idempotency"))
        assert "add_constraint" in {diff[0] for diff in differences(engine)}


def test_migrated_ledger_tables_refuse_update_and_delete(empty_url: str) -> None:
    engine = engine_for(empty_url)
    migrate.upgrade(engine)
    seed_transfer(engine)

    for statement in ("UPDATE transfers SET amount = 999 WHERE id = 1",
                      "DELETE FROM transfers WHERE id = 1"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))

    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, amount FROM transfers")).all() == [(1, 5)]


def test_downgrade_to_base_then_upgrade_again(empty_url: str) -> None:
    engine = engine_for(empty_url)
    migrate.upgrade(engine)

    migrate.downgrade(engine, "base")

    assert migrate.current(engine) is None
    assert table_names(engine) == {"alembic_version"}
    assert trigger_names(engine) == set()
    if harness.BACKEND == "postgresql":
        with engine.connect() as conn:
            functions = conn.execute(text(
                "SELECT count(*) FROM pg_proc WHERE proname = 'refuse_ledger_change'")).scalar()
        assert functions == 0

    migrate.upgrade(engine)

    assert migrate.current(engine) == migrate.head()
    assert differences(engine) == []
    assert trigger_names(engine) == expected_triggers()


def test_second_upgrade_only_reads(empty_url: str) -> None:
    engine = engine_for(empty_url)
    migrate.upgrade(engine)
    seed_transfer(engine)
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    migrate.upgrade(engine)

    writes = [s for s in statements
              if s.split()[0].upper() in ("CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE")]
    assert statements, "the fast path still reads the stored revision"
    assert writes == []
    assert version_rows(engine) == [migrate.head()]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT amount FROM transfers")).scalars().all() == [5]


def test_legacy_create_all_database_is_stamped_not_recreated(empty_url: str) -> None:
    engine = engine_for(empty_url)
    create_legacy(engine)
    seed_transfer(engine)
    assert migrate.current(engine) is None

    migrate.upgrade(engine)

    assert version_rows(engine) == [migrate.head()]
    with engine.connect() as conn:  # the rows written before adoption are still there
        assert conn.execute(text("SELECT id, amount FROM transfers")).all() == [(1, 5)]
    assert differences(engine) == []
    assert trigger_names(engine) == expected_triggers()


def test_legacy_database_older_than_the_settlement_tables_gets_them(empty_url: str) -> None:
    """Like var/gateway.db from before settlement: ``create_all`` would have added the missing
    tables at the next start, so adopting it does too, and guards them."""
    engine = engine_for(empty_url)
    older = [table for name, table in t.metadata.tables.items() if not name.startswith("settle")]
    with engine.begin() as conn:
        t.metadata.create_all(conn, tables=older)
        for statement in guards.create_statements(
                conn.dialect.name, [n for n in t.APPEND_ONLY_TABLES if not n.startswith("settle")]):
            conn.execute(text(statement))
    seed_transfer(engine)

    migrate.upgrade(engine)

    assert version_rows(engine) == [migrate.head()]
    assert table_names(engine) == set(t.metadata.tables) | {"alembic_version"}
    assert differences(engine) == []
    assert trigger_names(engine) == expected_triggers()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, amount FROM transfers")).all() == [(1, 5)]


def test_workers_starting_together_migrate_once(empty_url: str) -> None:
    workers = 6
    engines = [engine_for(empty_url) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(engine,), daemon=True) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # a deadlock guard, not a timing assertion

    assert not any(thread.is_alive() for thread in threads), "workers deadlocked"
    assert errors == []
    assert version_rows(engines[0]) == [migrate.head()]
    assert differences(engines[0]) == []
    assert trigger_names(engines[0]) == expected_triggers()


def test_operators_alembic_command_uses_database_url(empty_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_url}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]

    offline = subprocess.run([*alembic, "upgrade", "head", "--sql"], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
    assert "CREATE TABLE IF NOT EXISTS transfers" in offline.stdout
    assert "CREATE TRIGGER" in offline.stdout
    engine = engine_for(empty_url)
    assert migrate.current(engine) is None  # --sql only prints

    subprocess.run([*alembic, "upgrade", "head"], cwd=ROOT, env=env, capture_output=True,
                   text=True, check=True)
    assert migrate.current(engine) == migrate.head()
    assert differences(engine) == []

    shown = subprocess.run([*alembic, "current"], cwd=ROOT, env=env, capture_output=True,
                           text=True, check=True)
    assert migrate.head() in shown.stdout


def test_members_from_before_cards_get_a_unique_luhn_card_number(empty_url: str) -> None:
    engine = engine_for(empty_url)
    migrate.upgrade(engine, "0002_hot_path_indexes")
    with engine.begin() as conn:
        for index in range(3):
            conn.execute(text("INSERT INTO members (id, created_at) VALUES (:id, :at)"),
                         {"id": f"mem_{index}", "at": NOW.replace(tzinfo=None)})

    migrate.upgrade(engine)

    with engine.connect() as conn:
        cards = conn.execute(text("SELECT card_number FROM members")).scalars().all()
    assert len(cards) == 3 and len(set(cards)) == 3
    for card in cards:
        assert len(card) == 16 and card.isdigit()
        digits = [int(c) for c in card]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
                    for i, d in enumerate(reversed(digits)))
        assert total % 10 == 0, card
