"""Fixtures for the Redis backends: always a real Redis (tests/support/servers.py), never a fake.

Most tests share the session's Redis and keep apart by a key prefix of their own. A test that
kills Redis takes ``own_redis``, a server of its own, so it never pulls the shared one out from
under another test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from gateway.core.clock import FixedClock
from gateway.db.engine import create_schema, make_engine
from gateway.redis.health import connect
from tests.support import harness, servers


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def shared_redis() -> servers.RedisServer:
    return servers.redis()  # raises ServerUnavailable (a loud error) if it cannot start


@pytest.fixture
def client(shared_redis: servers.RedisServer, prefix: str) -> Iterator[redis.Redis]:
    found = connect(shared_redis.url)
    yield found
    keys = list(found.scan_iter(match=f"{prefix}*"))
    if keys:
        found.delete(*keys)
    found.close()


@pytest.fixture
def own_redis() -> Iterator[servers.RedisServer]:
    server = servers.RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(harness.NOW)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A migrated database on this run's backend (SQLite file or a PostgreSQL copy)."""
    engine = harness.track(make_engine(harness.database_url(tmp_path)))
    create_schema(engine)
    return engine
