#!/usr/bin/env python3
"""Set-up and run with nothing but Python 3.11+: ``python3 dev.py serve`` / ``python3 dev.py test``.

Creates ``.venv`` on first use, installs the project (``pip install -e .[test]``) again whenever
``pyproject.toml`` changes, then runs the gateway or the whole test suite: ruff, mypy (strict),
import-linter contracts, then pytest."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed")
    if not PY.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing dependencies into .venv ...", flush=True)
    run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"])
    stamp.write_text(digest)


# Debian packages the tests drive for real: Chromium renders the settlement report's charts,
# curl replays the README quick start. Installed when missing and we are root (CI is).
SYSTEM_PACKAGES = {"chromium": "chromium", "curl": "curl"}


def ensure_system_packages() -> None:
    missing = [pkg for tool, pkg in SYSTEM_PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"WARNING: {', '.join(missing)} missing and cannot be installed here "
              "(needs root and apt-get): the tests that need them will be SKIPPED", flush=True)
        return
    print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
    quiet = {"stdout": subprocess.DEVNULL}
    run(["apt-get", "update", "-q"], **quiet)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], **quiet,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def run(cmd: list[str], **kwargs: object) -> None:
    result = subprocess.run(cmd, cwd=ROOT, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(result.returncode)


def serve(args: list[str]) -> None:
    ensure_env()
    os.execv(str(PY), [str(PY), "-m", "gateway", "serve", "--demo", *args])


def test(args: list[str]) -> None:
    ensure_env()
    ensure_system_packages()
    steps = [
        ("ruff", [str(BIN / "ruff"), "check", "gateway", "partners", "tests", "benchmarks",
                  "dev.py"]),
        ("mypy", [str(BIN / "mypy")]),
        ("import contracts", [str(BIN / "lint-imports")]),
        ("pytest", [str(PY), "-m", "pytest", *args]),
    ]
    for name, cmd in steps:
        print(f"==> {name}", flush=True)
        run(cmd)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        sys.exit("usage: python3 dev.py serve [--port N] | python3 dev.py test [pytest args]")
    {"serve": serve, "test": test}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
