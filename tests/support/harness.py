"""Build the real application on a temporary SQLite file with a pinned clock, get real tokens
from the real token endpoint, and speak GraphQL to it over ASGI (no server process, no mocks).

Used by tests/api, tests/integration, tests/property and tests/contract."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from gateway.app import Gateway, build
from gateway.auth.scopes import DEFAULT_ALLOWANCE
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.db.engine import create_schema, make_engine
from gateway.settings import Limits, Settings
from tests.support import servers

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PARTNER_SCOPES = DEFAULT_ALLOWANCE["partner"]
LEDGER_TABLES = (t.transfers, t.operations, t.lots, t.lot_movements, t.holds, t.accounts,
                 t.members, t.linked_accounts)


# Which backends this run uses: the suites run once on the embedded default (SQLite, in-process
# limits) and once on the production backends (GATEWAY_TEST_BACKEND=postgresql,
# GATEWAY_TEST_REDIS=1); see dev.py. A test that needs one backend asks ``BACKEND``.
BACKEND = os.environ.get("GATEWAY_TEST_BACKEND", "sqlite")
USE_REDIS = os.environ.get("GATEWAY_TEST_REDIS", "0") == "1"
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"GATEWAY_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")

_template: str | None = None
_databases: list[str] = []
_engines: list[Engine] = []
_prefixes = itertools.count()
# PostgreSQL databases a finished test left, emptied and ready for the next one: emptying
# (see _empty) takes ~30 ms where CREATE DATABASE ... TEMPLATE plus DROP took 120-900 ms, and
# the suites make a database per test (hypothesis: per example). None: reuse is off (the
# template was not empty, see _template_fingerprint).
_free: list[str] | None = []
_fingerprint: str | None = None

# The shape of a database: relations, columns, constraints, triggers (and whether enabled),
# functions, and the migration it is at. A test that changed any of it (a migration test
# dropping an index, a guard test disabling a trigger) leaves a database that is dropped, not
# reused; one identical to the template is emptied and reused.
_SHAPE = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT 'r:' || c.relname || ':' || c.relkind::text FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 'a:' || a.attrelid::regclass::text || ':' || a.attname || ':'
      || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull::text FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT 'k:' || conname || ':' || conrelid::regclass::text || ':'
      || pg_get_constraintdef(k.oid) FROM pg_constraint k
    JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 't:' || tgname || ':' || tgrelid::regclass::text || ':' || tgenabled::text
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'f:' || p.proname || ':' || md5(p.prosrc) FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
) shape(x)"""


def _tables(conn: Connection) -> list[str]:
    return list(conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )).scalars())


def _state(conn: Connection) -> str:
    """The shape plus the migration recorded, if the schema records one."""
    shape = str(conn.execute(text(_SHAPE)).scalar_one())
    if "alembic_version" in _tables(conn):
        shape += ":" + ",".join(conn.execute(text(
            "SELECT version_num FROM alembic_version ORDER BY 1")).scalars())
    return shape


def _data_tables(conn: Connection) -> list[str]:
    return [name for name in _tables(conn) if name != "alembic_version"]


def _template_fingerprint(url: str) -> str | None:
    """The template's shape, or None (no reuse) if any table holds rows: emptying a used
    copy would then not give back the template."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            for name in _data_tables(conn):
                if conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{name}")')).scalar_one():
                    return None
            return _state(conn)
    finally:
        engine.dispose()


def database_url(tmp_path: Path) -> str:
    """A fresh, empty-but-migrated database for one test on this run's backend."""
    global _template, _fingerprint, _free
    if BACKEND == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    server = servers.postgres()
    if _template is None:  # migrate once, then copy (CREATE DATABASE ... TEMPLATE is fast)
        name = server.create_database()
        engine = make_engine(server.url(name))
        create_schema(engine)
        engine.dispose()
        _template = name
        _fingerprint = _template_fingerprint(server.url(name))
        if _fingerprint is None:
            _free = None
    name = _free.pop() if _free else server.create_database(template=_template)
    _databases.append(name)
    return server.url(name)


def _empty(name: str) -> bool:
    """Empty a used database for reuse if its shape is still the template's; False if it is
    not (or cannot be emptied quickly: a session still holds a lock), to drop it instead."""
    engine = make_engine(servers.postgres().url(name))
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            if _state(conn) != _fingerprint:
                return False
            # Replica role: no trigger fires, neither the append-only guards (which refuse
            # DELETE) nor the foreign-key checks (so the order does not matter). DELETE, not
            # TRUNCATE: on a handful of rows it is ~10x faster (TRUNCATE makes new files for
            # every table and index). Sequences restart, so ids are those of a new database.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in _data_tables(conn):
                conn.execute(text(f'DELETE FROM "{table}"'))
            for sequence in conn.execute(text(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
            )).scalars().all():
                conn.execute(text("SELECT setval(:s, 1, false)"), {"s": f'"{sequence}"'})
        return True
    except DBAPIError:
        return False
    finally:
        engine.dispose()


def track(engine: Engine) -> Engine:
    """Dispose of this engine when the test ends (PostgreSQL has a connection cap)."""
    _engines.append(engine)
    return engine


def mark() -> tuple[int, int]:
    """Where the lists of engines and databases stand now; see ``release_databases``."""
    return len(_engines), len(_databases)


def release_databases(since: tuple[int, int] = (0, 0)) -> None:
    """Dispose of the engines and free the databases made since ``since`` (a ``mark()``):
    emptied for the next test when unchanged in shape, else dropped.

    tests/conftest.py marks at the start of each test, module and session, so a module-scoped
    gateway keeps its database until the module ends while each test's own are freed after it.
    """
    engines, databases = since
    while len(_engines) > engines:
        _engines.pop().dispose()
    while len(_databases) > databases:
        name = _databases.pop()
        if _free is not None and _empty(name):
            _free.append(name)
        else:
            servers.postgres().drop_database(name)


def redis_settings() -> dict[str, Any]:
    if not USE_REDIS:
        return {}
    return {"redis_url": servers.redis().url, "redis_prefix": f"t{os.getpid()}.{next(_prefixes)}:"}


def test_settings(tmp_path: Path, *, limits: Limits | None = None, production: bool = False,
                  **overrides: Any) -> Settings:
    per_minute = 1_000_000
    values: dict[str, Any] = {
        "database_url": database_url(tmp_path),
        "issuer": "https://gateway.test",
        "production": production,
        "limits": limits or Limits(rate_limit_per_minute=per_minute, rate_limit_burst=per_minute),
        **redis_settings(),
    }
    values.update(overrides)
    return Settings(**values)


def make_gateway(tmp_path: Path, *, clock: FixedClock | None = None,
                 limits: Limits | None = None, production: bool = False) -> Gateway:
    settings = test_settings(tmp_path, limits=limits, production=production)
    gateway = build(settings, clock=clock or FixedClock(NOW))
    track(gateway.services.engine)
    return gateway


@dataclass
class Api:
    """A partner's view of the API: one OAuth client, its token, and a GraphQL helper."""

    gateway: Gateway
    partner_id: str | None
    client_id: str
    secret: str
    token: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def http(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.gateway.app)
        return httpx.AsyncClient(transport=transport, base_url="https://gateway.test")

    async def fetch_token(self, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        async with self.http() as client:
            response = await client.post("/oauth/token", data=data,
                                         auth=(self.client_id, self.secret))
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        self.token = token
        return token

    async def post(self, query: str, variables: dict[str, Any] | None = None,
                   token: str | None = None) -> httpx.Response:
        headers = dict(self.extra_headers)
        bearer = token if token is not None else self.token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        async with self.http() as client:
            return await client.post("/graphql", json={"query": query,
                                                       "variables": variables or {}},
                                     headers=headers)

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a query; assert HTTP 200 and no top-level errors; return ``data``."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, json.dumps(body["errors"], indent=2)
        data: dict[str, Any] = body["data"]
        return data


async def partner_api(gateway: Gateway, partner_id: str,
                      scopes: Iterable[str] = PARTNER_SCOPES, *, name: str | None = None) -> Api:
    created = gateway.auth.clients.create(
        name=name or f"{partner_id} test client", kind="partner", partner_id=partner_id,
        scopes=sorted(scopes), actor="test",
    )
    api = Api(gateway, partner_id, created.client.client_id, created.secret)
    await api.fetch_token()
    return api


def ledger_snapshot(gateway: Gateway) -> dict[str, Any]:
    """Row counts and every stored balance: equal before and after means nothing changed."""
    with gateway.services.engine.connect() as conn:
        counts = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                  for table in LEDGER_TABLES}
        balances = dict(conn.execute(select(t.accounts.c.code, t.accounts.c.balance)).all())
        lots = conn.execute(select(t.lots.c.id, t.lots.c.remaining).order_by(t.lots.c.id)).all()
        holds = conn.execute(select(t.holds.c.id, t.holds.c.status)).all()
    return {"counts": counts, "balances": balances, "lots": [tuple(r) for r in lots],
            "holds": sorted(tuple(r) for r in holds)}
