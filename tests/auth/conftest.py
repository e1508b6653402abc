"""Fixtures for the auth tests: a real database on this run's backend (a SQLite file, or a
fresh PostgreSQL database: tests/support/harness.py), a pinned clock, the real AuthService,
and an HTTP client speaking to the real Starlette routes over ASGI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, insert, select
from starlette.applications import Starlette

from gateway.auth.clients import CreatedClient
from gateway.auth.endpoints import auth_routes
from gateway.auth.service import AuthService
from gateway.core.clock import FixedClock
from gateway.db.engine import create_schema, make_engine
from gateway.db.tables import audit_log, metadata, partners
from gateway.settings import Settings
from tests.support import harness

ISSUER = "https://auth.coalition.test"
AUDIENCE = "coalition-gateway"
START = datetime(2030, 1, 15, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings() -> Settings:
    return Settings(issuer=ISSUER, audience=AUDIENCE, token_ttl_seconds=600)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = harness.track(make_engine(harness.database_url(tmp_path)))
    create_schema(engine)  # SQLite files start empty; a PostgreSQL copy is migrated already
    with engine.begin() as conn:
        for partner_id, name in (("shop", "Corner Shop"), ("fuel", "Fuel Co")):
            conn.execute(
                insert(partners).values(
                    id=partner_id, name=name, kind="merchant", currency="EUR", created_at=START
                )
            )
    return engine


@pytest.fixture
def auth(engine: Engine, settings: Settings, clock: FixedClock) -> AuthService:
    return AuthService(engine, settings, clock)


@pytest.fixture
def shop_client(auth: AuthService) -> CreatedClient:
    return auth.clients.create(name="Shop POS", kind="partner", partner_id="shop", actor="admin:t")


@pytest.fixture
def fuel_client(auth: AuthService) -> CreatedClient:
    return auth.clients.create(name="Fuel POS", kind="partner", partner_id="fuel", actor="admin:t")


@pytest.fixture
async def http(auth: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=auth_routes(auth))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


async def _get_token(
    http: httpx.AsyncClient, created: CreatedClient, scope: str | None = None
) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = await http.post(
        "/oauth/token", data=data, auth=(created.client.client_id, created.secret)
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def _audit_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    return [
        {
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "detail": json.loads(row.detail),
            "at": row.at,
        }
        for row in rows
    ]


def _dump_database(engine: Engine, tables: Iterable[str] | None = None) -> str:
    """Every row of every table as text, to prove a secret is nowhere in it."""
    names = list(tables) if tables is not None else list(metadata.tables)
    parts: list[str] = []
    with engine.connect() as conn:
        for name in names:
            for row in conn.execute(select(metadata.tables[name])):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


# Helpers are handed out as fixtures (tests/ has no packages, so they cannot be imported).
@pytest.fixture
def get_token() -> Any:
    return _get_token


@pytest.fixture
def audit_rows() -> Any:
    return _audit_rows


@pytest.fixture
def dump_database() -> Any:
    return _dump_database
