"""Alembic's environment: how a revision reaches the database.

Two ways in. ``gateway.db.migrate`` (the gateway at start, tests, the ``gateway db`` commands)
passes a connection in ``config.attributes["connection"]`` that already holds the migration lock
inside an open transaction; the revisions run in that transaction. ``alembic upgrade head`` from
the repository root (operators) passes nothing: the database is ``DATABASE_URL`` through
``Settings.from_env``, and this module takes the same lock before running.
``alembic upgrade head --sql`` prints the DDL instead (offline mode)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.db.tables import metadata
from gateway.settings import Settings


def _configure_and_run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: later revisions copy-and-move tables in batch mode.
        render_as_batch=sqlite,
        # pysqlite with our own BEGIN runs DDL inside the transaction: all or nothing.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_settings() -> None:
    from gateway.db import migrate
    from gateway.db.engine import make_engine

    engine = make_engine(Settings.from_env().database_url)
    try:
        with migrate.locked(engine) as connection:
            _configure_and_run(connection)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=Settings.from_env().database_url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


_given = context.config.attributes.get("connection")
if isinstance(_given, Connection):
    _configure_and_run(_given)
elif context.is_offline_mode():
    _run_offline()
else:
    _run_from_settings()
