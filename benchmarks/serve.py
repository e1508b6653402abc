"""Start the servers under test as real processes on loopback, and stop them.

The gateway is started exactly as an operator would (``python -m gateway serve --demo``), with
``DATABASE_URL`` (and ``REDIS_URL`` on PostgreSQL) and a rate limit high enough
never to bite. The bare Strawberry app (``benchmarks.bare``) is served the same way: uvicorn,
the same worker count. PostgreSQL and Redis are throwaway servers (tests/support/servers.py);
PostgreSQL runs durable (fsync and synchronous_commit on), as production would."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from benchmarks.load import progress
from tests.support import process, servers

DEMO_CLIENT = ("grocery-demo", "grocery-demo-secret")
UNLIMITED = "100000000"
_LOGS = itertools.count()


def effective_workers(requested: int, backend: str) -> int:
    """SQLite is served by one worker (docs/deployment.md): one file admits one writer, and
    writers in several processes wait for each other in SQLite's sleeping busy handler instead
    of the in-process writer queue. Both apps of a comparison get the same count."""
    return 1 if backend == "sqlite" else requested


BENCH_ISSUER = "http://127.0.0.1"  # loopback: OAuth allows plain http only there


@contextlib.contextmanager
def gateway(database_url: str, workdir: Path, *, workers: int = 1,
            redis_url: str | None = None,
            extra_env: Mapping[str, str] | None = None) -> Iterator[process.GatewayProcess]:
    """``gateway serve --demo`` as an operator would start it (tests/support/process.py);
    ``extra_env``: more settings (e.g. ``GATEWAY_CATALOG_DIR``)."""
    # One issuer for the served app and for tokens minted offline by a benchmark's seeding
    # (benchmarks/seed.py): otherwise the server derives its own from its port and refuses them.
    env = {"DATABASE_URL": database_url, "GATEWAY_ISSUER": BENCH_ISSUER,
           "GATEWAY_RATE_LIMIT_PER_MINUTE": UNLIMITED, "GATEWAY_RATE_LIMIT_BURST": UNLIMITED,
           "GATEWAY_TOKEN_TTL_SECONDS": "900", "GATEWAY_WORKERS": str(workers)}
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra_env or {})
    with process.running(env, ["--demo", "--workers", str(workers)], graceful=True,
                         log_path=_log(workdir, "gateway")) as server:
        yield server


@contextlib.contextmanager
def bare(workdir: Path, *, workers: int = 1) -> Iterator[process.GatewayProcess]:
    """The bare Strawberry app, served the same way."""
    with process.running({}, ["--workers", str(workers)], graceful=True,
                         program=("-m", "benchmarks.bare"),
                         log_path=_log(workdir, "bare")) as server:
        yield server


def _log(workdir: Path, name: str) -> Path:
    return workdir / f"{name}-{next(_LOGS)}.log"


def token(url: str, client: tuple[str, str] = DEMO_CLIENT) -> str:
    """A real access token from the gateway's own token endpoint (demo grocery client)."""
    response = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=client, timeout=10)
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


def start_postgres() -> servers.PostgresServer:
    progress("  starting a durable throwaway PostgreSQL (fsync on)")
    return servers.PostgresServer(durable=True).start()


def start_redis() -> servers.RedisServer:
    return servers.RedisServer().start()
