"""``/readyz`` answers 503 naming what is down: the database (on this run's backend) and every
readiness check the backends register (Redis's ping when ``REDIS_URL`` is set); ``/healthz``
stays 200 throughout, since a restart would not bring a database back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from tests.support import harness, servers
from tests.support.harness import BACKEND, NOW, USE_REDIS, make_gateway, track


async def probe(gateway: Gateway) -> tuple[int, dict[str, Any], int]:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client:
        ready = await client.get("/readyz")
        healthy = await client.get("/healthz")
    return ready.status_code, ready.json(), healthy.status_code


async def test_ready_when_everything_answers(tmp_path: Path) -> None:
    status, body, health = await probe(make_gateway(tmp_path))
    expected = {"database": "ok", **({"redis": "ok"} if USE_REDIS else {})}
    assert (status, body, health) == (200, {"status": "ready", "down": [],
                                            "checks": expected}, 200)


@pytest.mark.skipif(BACKEND != "sqlite", reason="the SQLite variant of the database outage")
async def test_sqlite_database_gone(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    settings = harness.test_settings(tmp_path, database_url=f"sqlite:///{folder / 'gateway.db'}")
    gateway = build(settings, clock=FixedClock(NOW))
    track(gateway.services.engine)
    assert (await probe(gateway))[0] == 200
    # The volume goes away: pooled connections are dropped, new ones cannot open the file.
    gateway.services.engine.dispose()
    shutil.move(folder, tmp_path / "elsewhere")
    status, body, health = await probe(gateway)
    assert (status, body["status"], body["down"], health) == (503, "unavailable",
                                                              ["database"], 200)
    assert "unable to open database file" in body["checks"]["database"]
    shutil.move(tmp_path / "elsewhere", folder)
    assert (await probe(gateway))[0] == 200


@pytest.mark.skipif(BACKEND != "postgresql", reason="the PostgreSQL variant of the outage")
async def test_postgresql_refusing_connections(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    name = gateway.services.engine.url.database
    assert name is not None
    server = servers.postgres()
    assert (await probe(gateway))[0] == 200
    server.psql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    server.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    try:
        status, body, health = await probe(gateway)
        assert (status, body["down"], health) == (503, ["database"], 200)
        assert body["checks"]["database"] != "ok"
    finally:
        server.psql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    assert (await probe(gateway))[0] == 200


async def test_a_failing_backend_check_is_named(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)

    def queue() -> None:
        raise ConnectionError("queue unreachable")

    gateway.backends.checks["queue"] = queue
    status, body, _ = await probe(gateway)
    assert (status, body["down"]) == (503, ["queue"])
    assert body["checks"]["queue"] == "ConnectionError: queue unreachable"
    assert body["checks"]["database"] == "ok"
    # a load balancer may route on the database alone
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client:
        only = await client.get("/readyz", params={"only": "database"})
        assert (only.status_code, only.json()["checks"]) == (200, {"database": "ok"})
        both = await client.get("/readyz", params={"only": "database,queue"})
        assert (both.status_code, both.json()["down"]) == (503, ["queue"])
        typo = await client.get("/readyz", params={"only": "databse"})
        assert (typo.status_code, typo.json()["unknown"]) == (400, ["databse"])


@pytest.mark.skipif(not USE_REDIS, reason="Redis readiness runs with GATEWAY_TEST_REDIS=1")
async def test_redis_down(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    redis = servers.redis()
    assert (await probe(gateway))[0] == 200
    redis.kill()
    try:
        status, body, health = await probe(gateway)
        assert (status, body["down"], health) == (503, ["redis"], 200)
    finally:
        redis.restart()
