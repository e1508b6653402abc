"""PostgreSQL pool checkout: no pre-ping round trip, yet a connection the server closed while it
lay idle in the pool is replaced before a request uses it (gateway/db/engine.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from gateway.db.engine import make_engine
from tests.support import harness

pytestmark = pytest.mark.skipif(harness.BACKEND != "postgresql", reason="PostgreSQL pool")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(harness.database_url(tmp_path))
    try:
        yield made
    finally:
        made.dispose()


def test_checkout_sends_no_statement(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: sent.append(statement))
    assert engine.pool._pre_ping is False  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.execute(text("SELECT 2"))
    assert sent == ["SELECT 2"]


def test_a_connection_killed_while_idle_is_replaced_at_checkout(engine: Engine) -> None:
    with engine.connect() as conn:
        victim = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    # The connection is back in the pool, idle; the server ends it (as a restart would).
    killer = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with killer.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"),
                                 {"pid": victim}).scalar_one() is True  # waits until it is gone
    finally:
        killer.dispose()
    with engine.connect() as conn:  # no error: the dead one was discarded at checkout
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
