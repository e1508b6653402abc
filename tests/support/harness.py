"""Build the real application on a temporary SQLite file with a pinned clock, get real tokens
from the real token endpoint, and speak GraphQL to it over ASGI (no server process, no mocks).

Used by tests/api, tests/integration, tests/property and tests/contract."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from gateway.app import Gateway, build
from gateway.auth.scopes import DEFAULT_ALLOWANCE
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.limits import InProcessRateLimiter
from gateway.settings import Limits, Settings

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PARTNER_SCOPES = DEFAULT_ALLOWANCE["partner"]
LEDGER_TABLES = (t.transfers, t.operations, t.lots, t.lot_movements, t.holds, t.accounts,
                 t.members, t.linked_accounts)


def make_gateway(tmp_path: Path, *, clock: FixedClock | None = None,
                 limits: Limits | None = None, production: bool = False) -> Gateway:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        issuer="https://gateway.test",
        production=production,
        limits=limits or Limits(rate_limit_per_minute=1_000_000),
    )
    return build(settings, clock=clock or FixedClock(NOW),
                 limiter=InProcessRateLimiter(settings.limits.rate_limit_per_minute,
                                              burst=settings.limits.rate_limit_per_minute))


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
