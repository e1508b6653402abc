"""Engines for the two backends, configured for a ledger.

SQLite (embedded default): WAL, ``synchronous=FULL`` (an acknowledged posting survives a power
cut), foreign keys on, and every write transaction opened with ``BEGIN IMMEDIATE`` so two writers
never both read a balance and then both spend it. PostgreSQL (production): row locks on the
member's wallet serialise writers per member (see ``gateway.db.uow``).

PostgreSQL connections are checked for life at checkout without a round trip (issue 11: the
pool's ``pre_ping`` sent one on every checkout, one more round trip per request). A server that
closes an idle connection (a restart, ``pg_terminate_backend``, ``idle_session_timeout``) sends
its ``FATAL`` message and closes the socket, so the socket of a connection lying idle in the pool
is readable only if it is dead: :func:`_closed_while_idle` polls it (one ``poll`` system call, no
I/O) and the pool replaces such a connection before anyone uses it. What no poll can see, a peer
gone silently (a cut network, no FIN), fails the first statement; SQLAlchemy then invalidates
the whole pool, so one request per worker sees the error, and ``pool_recycle`` bounds how old
such a connection can grow."""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

RECYCLE_S = 1800  # a connection older than this is replaced at checkout (no round trip either)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20,
                           pool_recycle=RECYCLE_S)

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if _closed_while_idle(dbapi_conn):
            # The pool discards this connection and checks out another (or a new one).
            raise DisconnectionError("the server closed this pooled connection while idle")

    return engine


def _closed_while_idle(dbapi_conn: Any) -> bool:
    """Whether an idle pooled PostgreSQL connection is dead, without a round trip: psycopg knows
    it closed or broke, or the socket is readable (an idle connection is sent nothing unless
    the server is closing it: its FATAL message, then end of file)."""
    if getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False):
        return True
    fileno = getattr(dbapi_conn, "fileno", None)
    if fileno is None:
        return False
    poller = select.poll()
    poller.register(fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


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
