"""Engines for the two backends, configured for a ledger.

SQLite (embedded default): WAL, ``synchronous=FULL`` (an acknowledged posting survives a power
cut), foreign keys on, and every write transaction opened with ``BEGIN IMMEDIATE`` so two writers
never both read a balance and then both spend it. PostgreSQL (production): row locks on the
member's wallet serialise writers per member (see ``gateway.db.uow``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if memory:
        from sqlalchemy.pool import StaticPool

        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest migration (the name predates Alembic; callers keep it).

    Cheap at the head (one query); see ``gateway.db.migrate``."""
    from gateway.db.migrate import upgrade  # Alembic is imported only by code that migrates

    upgrade(engine)
