"""Throwaway PostgreSQL and Redis servers on loopback, in a temporary directory.

The tests (and the benchmarks) run against real servers, never fakes. ``postgres()`` and
``redis()`` start one server each per process on first use and stop it at exit. A server that
cannot start raises ``ServerUnavailable`` with the reason: in CI that fails the run loudly
(``GATEWAY_TEST_BACKEND=postgresql`` or ``GATEWAY_TEST_REDIS=1`` asked for it). Packages are
installed by ``dev.py test`` (``apt-get install postgresql redis-server``) before pytest runs.

PostgreSQL runs as the ``postgres`` system user when we are root (``initdb`` refuses root), with
``fsync=off``: the tests kill the gateway, not the database, so durability of the database's own
files does not matter here and the suite runs several times faster. The benchmarks start it with
``durable=True`` (fsync and ``synchronous_commit`` on), as production would run."""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ServerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(f"server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise ServerUnavailable(f"PostgreSQL's {name} is not installed "
                                "(apt-get install postgresql; dev.py test does this as root)")
    return path


@dataclass
class PostgresServer:
    durable: bool = False
    port: int = 0
    root: Path = field(default_factory=Path)
    _as_postgres: bool = False
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _admin: Any = None  # psycopg.Connection, see admin()

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise ServerUnavailable(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> PostgresServer:
        self._as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="gw-pg-"))
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self._run(_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "gw", "-E", "UTF8",
                  "--no-sync")
        self.port = free_port()
        options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1",
                   "-c max_connections=300", "-c shared_buffers=128MB"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(self.root / "log"),
                  "-o", " ".join(options), "-w", "-t", "60", "start")
        atexit.register(self.stop)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://gw@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "gw",
                           "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql)
        return result.stdout

    def admin(self, sql: str) -> None:
        """Run one statement in the ``postgres`` database on a kept autocommit connection (no
        psql process per statement: the tests create and drop hundreds of databases)."""
        if self._admin is None or self._admin.closed:
            import psycopg  # the driver the gateway uses; imported late, as psql needs none

            self._admin = psycopg.connect(host="127.0.0.1", port=self.port, user="gw",
                                          dbname="postgres", autocommit=True)
        self._admin.execute(sql.encode())

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its name."""
        name = f"gw_{os.getpid()}_{next(self._names)}"
        clause = f" TEMPLATE {template}" if template else ""
        self.admin(f"CREATE DATABASE {name}{clause}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if not self.root.name:
            return
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        with contextlib.suppress(ServerUnavailable):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                      "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = Path()


@dataclass
class RedisServer:
    port: int = 0
    root: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not installed (apt-get install "
                                    "redis-server; dev.py test does this as root)")
        if not self.root.name:
            self.root = Path(tempfile.mkdtemp(prefix="gw-redis-"))
            self.port = free_port()
            atexit.register(self.stop)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, 20, self.proc)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no save."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        if self.root.name:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = Path()


_postgres: PostgresServer | None = None
_redis: RedisServer | None = None


def postgres() -> PostgresServer:
    """The process's shared throwaway PostgreSQL (tests create a database each)."""
    global _postgres
    if _postgres is None:
        _postgres = PostgresServer().start()
    return _postgres


def redis() -> RedisServer:
    """The process's shared throwaway Redis (tests use a key prefix each)."""
    global _redis
    if _redis is None:
        _redis = RedisServer().start()
    return _redis


def stop_all() -> None:
    for server in (_postgres, _redis):
        if server is not None:
            server.stop()
