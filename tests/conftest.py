"""Session-wide test set-up: which backends this run uses, and cleaning up after each test.

``GATEWAY_TEST_BACKEND=postgresql`` runs the storage suites on a throwaway PostgreSQL server and
``GATEWAY_TEST_REDIS=1`` puts limits, revocations and idempotency locks in a throwaway Redis
(tests/support/servers.py). Both are started once per session; a server that cannot start
fails the whole run at collection, loudly, instead of skipping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import harness, servers


def pytest_report_header(config: pytest.Config) -> str:
    redis = "Redis" if harness.USE_REDIS else "in-process limits/locks"
    return f"gateway backends: {harness.BACKEND} + {redis}"


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        if harness.BACKEND == "postgresql":
            servers.postgres()
        if harness.USE_REDIS:
            servers.redis()
    except servers.ServerUnavailable as exc:
        pytest.exit(f"BACKEND UNAVAILABLE, refusing to run without it: {exc}", returncode=3)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    servers.stop_all()


# Autouse fixtures are set up first within their scope, so each mark is taken before any
# fixture of that scope makes a database, and released after all of them are torn down.
@pytest.fixture(autouse=True, scope="session")
def _release_session_databases() -> Iterator[None]:
    since = harness.mark()
    yield
    harness.release_databases(since)


@pytest.fixture(autouse=True, scope="module")
def _release_module_databases() -> Iterator[None]:
    since = harness.mark()
    yield
    harness.release_databases(since)


@pytest.fixture(autouse=True)
def _release_databases() -> Iterator[None]:
    since = harness.mark()
    yield
    harness.release_databases(since)
