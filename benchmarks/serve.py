"""Start the servers under test as real processes on loopback, and stop them.

The gateway is started exactly as an operator would (``python -m gateway serve --demo``), with
``DATABASE_URL`` (and ``REDIS_URL`` when the Redis backend exists) and a rate limit high enough
never to bite. The bare Strawberry app (``benchmarks.bare``) is served the same way: uvicorn,
the same worker count. PostgreSQL and Redis are throwaway servers (tests/support/servers.py);
PostgreSQL runs durable (fsync and synchronous_commit on), as production would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.load import progress
from tests.support import servers

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEMO_CLIENT = ("grocery-demo", "grocery-demo-secret")
UNLIMITED = "100000000"


@dataclass
class Running:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def effective_workers(requested: int, backend: str) -> int:
    """SQLite is served by one worker (docs/deployment.md): one file admits one writer, and
    writers in several processes wait for each other in SQLite's sleeping busy handler instead
    of the in-process writer queue. Both apps of a comparison get the same count."""
    return 1 if backend == "sqlite" else requested


@contextlib.contextmanager
def gateway(database_url: str, workdir: Path, *, workers: int = 1,
            redis_url: str | None = None) -> Iterator[Running]:
    port = servers.free_port()
    env = {**os.environ, "DATABASE_URL": database_url,
           "GATEWAY_RATE_LIMIT_PER_MINUTE": UNLIMITED, "GATEWAY_RATE_LIMIT_BURST": UNLIMITED,
           "GATEWAY_TOKEN_TTL_SECONDS": "900", "GATEWAY_ISSUER": f"http://127.0.0.1:{port}",
           "GATEWAY_WORKERS": str(workers)}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    cmd = [PYTHON, "-m", "gateway", "serve", "--demo", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    with _process(cmd, env, port, workdir / f"gateway-{port}.log") as running:
        yield running


@contextlib.contextmanager
def bare(workdir: Path, *, workers: int = 1) -> Iterator[Running]:
    port = servers.free_port()
    cmd = [PYTHON, "-m", "benchmarks.bare", "--port", str(port), "--workers", str(workers)]
    with _process(cmd, dict(os.environ), port, workdir / f"bare-{port}.log") as running:
        yield running


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Running]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        yield Running(url, proc, log)
    finally:
        _stop(proc)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not ready after 60 s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (uvicorn and its workers), then SIGKILL if stuck."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def token(url: str) -> str:
    """A real access token from the gateway's own token endpoint (demo grocery client)."""
    response = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=DEMO_CLIENT, timeout=10)
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


def redis_backend_available() -> bool:
    """Whether ``REDIS_URL`` is implemented yet (``build_backends`` raised until it landed)."""
    from gateway.backends import build_backends
    from gateway.core.clock import SystemClock
    from gateway.settings import Settings

    try:
        backends = build_backends(Settings(redis_url="redis://127.0.0.1:1/0"), None,  # type: ignore[arg-type]
                                  SystemClock())
    except NotImplementedError:
        return False
    except Exception:  # implemented, only unreachable at this made-up address
        return True
    backends.close()
    return True


def start_postgres() -> servers.PostgresServer:
    progress("  starting a durable throwaway PostgreSQL (fsync on)")
    return servers.PostgresServer(durable=True).start()


def start_redis() -> servers.RedisServer:
    return servers.RedisServer().start()
