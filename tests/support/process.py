"""The gateway as a real server process: ``python -m gateway serve`` on a free loopback port.

Crash and operations tests need what an in-process ASGI app cannot give: a process that can be
SIGKILLed mid-request, several worker processes, real sockets. ``start(env, args, log_path)``
launches ``serve`` in its own process group (so a signal reaches the workers too), with the
caller's environment on top of a clean one (nothing of this test run's ``GATEWAY_*``,
``DATABASE_URL`` or ``REDIS_URL`` leaks in), its output captured to ``log_path``, and returns
once ``/healthz`` answers. ``running(...)`` does the same as a context manager that kills the
group on the way out, whatever happened."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
STARTUP_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 15.0
_INHERITED_OUT = ("DATABASE_URL", "REDIS_URL")


class ServerFailed(RuntimeError):
    """The server exited or never answered ``/healthz``; the message holds its output."""


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = EXIT_TIMEOUT_S) -> int:
        """Send ``sig`` to the whole process group (the server and its workers) and wait for
        the server to exit; returns its exit status (``-sig`` when the signal killed it)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        code = self.process.wait(timeout=timeout)
        if sig == signal.SIGKILL:  # workers orphaned by a dead master die with the group too
            _wait_group_gone(self.process.pid, timeout)
        return code

    def stop(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """SIGTERM (graceful shutdown), then SIGKILL if it is still there after ``timeout``."""
        try:
            return self.kill(signal.SIGTERM, timeout)
        except subprocess.TimeoutExpired:
            return self.kill(signal.SIGKILL)


def server_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment minus the gateway's own settings, plus ``env``."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith("GATEWAY_") and key not in _INHERITED_OUT}
    clean.update(PYTHONUNBUFFERED="1")
    clean.update(env)
    return clean


GATEWAY_SERVE = ("-m", "gateway", "serve", "--host", "127.0.0.1")


def start(env: Mapping[str, str], args: Sequence[str] = (), *, log_path: Path,
          timeout: float = STARTUP_TIMEOUT_S,
          program: Sequence[str] = GATEWAY_SERVE, port: int | None = None) -> GatewayProcess:
    """``python -m gateway serve --host 127.0.0.1 --port <free> *args`` with ``env``; returns
    when ``/healthz`` answers 200, raises ``ServerFailed`` (after killing it) otherwise.
    ``program``: another server that takes ``--port`` and answers ``/healthz`` the same way
    (the benchmarks' bare Strawberry app). ``port``: one the caller chose (e.g. to name the
    server in ``GATEWAY_ISSUER`` beforehand); a free one otherwise."""
    port = port or free_port()
    command = [PYTHON, *program, "--port", str(port), *args]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=server_env(env), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = GatewayProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_healthy(server, timeout)
    except BaseException:
        if server.alive():
            server.kill()
        raise
    return server


@contextlib.contextmanager
def running(env: Mapping[str, str], args: Sequence[str] = (), *, log_path: Path,
            timeout: float = STARTUP_TIMEOUT_S, program: Sequence[str] = GATEWAY_SERVE,
            graceful: bool = False, port: int | None = None) -> Iterator[GatewayProcess]:
    """``start`` as a context manager; on the way out the group is killed (or, ``graceful``,
    sent SIGTERM first), whatever happened."""
    server = start(env, args, log_path=log_path, timeout=timeout, program=program, port=port)
    try:
        yield server
    finally:
        if server.alive():
            if graceful:
                server.stop()
            else:
                server.kill()


def _wait_healthy(server: GatewayProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerFailed(f"the server exited with {server.process.returncode} during "
                               f"startup:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=1) as response:
                if response.status == 200 and json.load(response).get("status") == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(0.05)
    raise ServerFailed(f"/healthz did not answer within {timeout} s:\n{server.output()}")


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _live_members(pgid):
        if time.monotonic() > deadline:
            raise ServerFailed(f"process group {pgid} still has members {timeout} s after "
                               "SIGKILL")
        time.sleep(0.02)


def group_members(pgid: int) -> list[int]:
    """The live processes of a server's group: the server and its workers."""
    return _live_members(pgid)


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (a killed worker whose new parent has
    not reaped it yet is dead for our purposes), read from /proc."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                live.append(int(stat.parent.name))
    return live
