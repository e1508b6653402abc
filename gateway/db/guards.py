"""Database-side guarantees the CHECK constraints cannot express: append-only ledger tables.

Triggers refuse UPDATE and DELETE on every table in ``APPEND_ONLY_TABLES``, on SQLite and on
PostgreSQL, so a bug or a hand-typed SQL statement cannot rewrite history (DESIGN §4.2)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from gateway.db.tables import APPEND_ONLY_TABLES


def install_guards(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for action in ("UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} "
                        f"BEFORE {action} ON {table} BEGIN "
                        f"SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
                    )
                )
        return
    conn.execute(
        text(
            "CREATE OR REPLACE FUNCTION refuse_ledger_change() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$ LANGUAGE plpgsql"
        )
    )
    for table in APPEND_ONLY_TABLES:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        conn.execute(
            text(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()"
            )
        )
