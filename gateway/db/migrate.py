"""Bring a database to the newest schema, safely when many processes start at once.

The schema has one source, the Alembic revisions in ``gateway/db/migrations``; every start of the
gateway calls ``upgrade``. So ``upgrade`` must be cheap when there is nothing to do: it first
reads the stored revision with one query and returns if it is the head, without Alembic's
command machinery (loading ``env.py`` and the revision files). Only when the database is behind
does it take the migration lock, read the revision again under it (another worker may have just
migrated), and run ``alembic upgrade``:

- PostgreSQL: ``pg_advisory_xact_lock`` in the migrating transaction, so N workers on M hosts
  starting together migrate once; the others wait, then find the head and do nothing. DDL is
  transactional, so a crash mid-migration leaves the old schema.
- SQLite: ``BEGIN IMMEDIATE``, the database's single write lock, for the same effect.

A database made by the old ``metadata.create_all`` start-up path (tables present, no
``alembic_version``, e.g. an existing ``var/gateway.db``) needs nothing special: the baseline
revision creates its tables and indexes ``IF NOT EXISTS`` and its guard DDL is idempotent, so
running it there does what ``create_all`` did at every start (adds what is missing, keeps every
existing table and row) and records the baseline. No code path guesses at such a database."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works if every gateway uses the same one: the ASCII bytes of "gw-migra".
LOCK_KEY = 0x67772D6D69677261


def head() -> str:
    """The newest revision id."""
    revision = _script().get_current_head()
    if revision is None:  # pragma: no cover - the baseline always exists
        raise RuntimeError(f"no migration revisions in {MIGRATIONS_DIR}")
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision, or None for a database never migrated (empty or legacy)."""
    with engine.connect() as conn:
        return _current(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision`` (the newest by default); a no-op costing one query at the head."""
    if revision in ("head", head()) and current(engine) == head():
        return
    with locked(engine) as conn:
        command.upgrade(_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` ("base" removes everything the migrations made)."""
    with locked(engine) as conn:
        command.downgrade(_config(conn), revision)


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that holds the migration lock until it commits."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")  # see gateway.db.engine
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield conn


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))

