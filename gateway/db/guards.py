"""Database-side guarantees the CHECK constraints cannot express: append-only ledger tables.

Triggers refuse UPDATE and DELETE on every table in ``APPEND_ONLY_TABLES``, on SQLite and on
PostgreSQL, so a bug or a hand-typed SQL statement cannot rewrite history (DESIGN §4.2).

This module only writes the DDL; the migrations (``gateway/db/migrations``) run it, so the SQL
exists once. A revision passes its own frozen list of tables: the baseline guards exactly the
tables it created, whatever ``APPEND_ONLY_TABLES`` says later. Every statement is idempotent
(``IF NOT EXISTS`` / ``OR REPLACE`` / ``IF EXISTS``), so running it over a database that already
has the guards (a legacy database being adopted) changes nothing."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.db.tables import APPEND_ONLY_TABLES

_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION refuse_ledger_change() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
    "USING ERRCODE = 'integrity_constraint_violation'; END $$ LANGUAGE plpgsql"
)


def create_statements(dialect: str, tables: Sequence[str] = APPEND_ONLY_TABLES) -> list[str]:
    """DDL that makes ``tables`` append-only on ``dialect`` ("sqlite" or "postgresql")."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} "
            f"BEFORE {action} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            for table in tables
            for action in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        statements = [_PG_FUNCTION]
        for table in tables:
            statements.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()"
            )
        return statements
    raise ValueError(f"no append-only guards for the {dialect!r} dialect")


def drop_statements(
    dialect: str, tables: Sequence[str] = APPEND_ONLY_TABLES, *, function: bool = True
) -> list[str]:
    """DDL that removes the guards from ``tables`` (and, on PostgreSQL, the trigger function
    unless ``function`` is false because other tables still use it)."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{action}"
                for table in tables for action in ("update", "delete")]
    if dialect == "postgresql":
        statements = [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in tables]
        if function:
            statements.append("DROP FUNCTION IF EXISTS refuse_ledger_change()")
        return statements
    raise ValueError(f"no append-only guards for the {dialect!r} dialect")

