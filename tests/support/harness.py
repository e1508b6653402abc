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
from sqlalchemy import Engine, func, select

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


def database_url(tmp_path: Path) -> str:
    """A fresh, empty-but-migrated database for one test on this run's backend."""
    global _template
    if BACKEND == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    server = servers.postgres()
    if _template is None:  # migrate once, then copy (CREATE DATABASE ... TEMPLATE is fast)
        name = server.create_database()
        engine = make_engine(server.url(name))
        create_schema(engine)
        engine.dispose()
        _template = name
    name = server.create_database(template=_template)
    _databases.append(name)
    return server.url(name)


def track(engine: Engine) -> Engine:
    """Dispose of this engine when the test ends (PostgreSQL has a connection cap)."""
    _engines.append(engine)
    return engine


def release_databases() -> None:
    """Called after every test by tests/conftest.py."""
    while _engines:
        _engines.pop().dispose()
    while _databases:
        servers.postgres().drop_database(_databases.pop())


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
