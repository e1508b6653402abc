"""The round trips of one earn on PostgreSQL (issue 11): counted on the wire, from libpq's
protocol trace of the connection the earn used (a round trip is a message the client then waits
on: a Sync ending an extended-protocol batch or pipeline, or a simple Query; a Flush after a
Sync is part of the same wait).

Before the pipelined write path (``gateway.db.pgfast``) an earn sent 15 statements, each its own
round trip; the count fails this test if it climbs back above ``MAX_EARN_ROUND_TRIPS``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select

from gateway.app import Gateway
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger.chart import AccountKind, member_account
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from tests.support import harness

pytestmark = pytest.mark.skipif(harness.BACKEND != "postgresql",
                                reason="round trips are counted on PostgreSQL")

# The earn of a member whose housekeeping has nothing due: (1) BEGIN, the key's advisory lock
# and the key lookup; (2) the member's link; (3) the purchase lock and lookup, the wallet's row
# lock, "anything due?", points earned today and the member's accounts; (4) the writes and
# COMMIT. Before gateway.db.pgfast: 15. See docs/decisions/018-postgresql-pipelined-writes.md.
MAX_EARN_ROUND_TRIPS = 4
_WAITS = re.compile(r"^(?:\S+\t)?F\t\d+\t(Sync|Query)\b", re.MULTILINE)


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    gateway = harness.make_gateway(tmp_path)
    enrol_customer(gateway.services.engine, gateway.services.clock, "grocery", "rt-1")
    ctx = gateway.services.ledger
    for n in range(6):  # past psycopg's prepare_threshold: the statements are prepared now
        earn_points(ctx, EarnPoints("grocery", "rt-1", Money(10_000, "UAH"), "store",
                                    f"warm-{n}", f"warm-{n}"))
    return gateway


@pytest.fixture
def traced(gw: Gateway, tmp_path: Path) -> Iterator[list[Path]]:
    """Trace the wire of every connection checked out while the test runs."""
    files: list[Path] = []
    engine = gw.services.engine

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        assert isinstance(dbapi_conn, psycopg.Connection)
        path = tmp_path / f"trace-{len(files)}.txt"
        files.append(path)
        handle = path.open("w")
        dbapi_conn.pgconn.trace(handle.fileno())
        dbapi_conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        handles.append((dbapi_conn, handle))

    def on_checkin(dbapi_conn: Any, _record: Any) -> None:
        for conn, handle in list(handles):
            if conn is dbapi_conn:
                conn.pgconn.untrace()
                handle.close()
                handles.remove((conn, handle))

    handles: list[tuple[Any, Any]] = []
    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    yield files
    event.remove(engine, "checkout", on_checkout)
    event.remove(engine, "checkin", on_checkin)


def round_trips(files: list[Path]) -> int:
    return sum(len(_WAITS.findall(path.read_text())) for path in files)


def test_one_earn_is_at_most_the_counted_round_trips(gw: Gateway, traced: list[Path]) -> None:
    earn_points(gw.services.ledger, EarnPoints("grocery", "rt-1", Money(10_000, "UAH"),
                                               "store", "counted", "counted"))
    sent = round_trips(traced)
    text = "\n".join(path.read_text() for path in traced)
    assert 0 < sent <= MAX_EARN_ROUND_TRIPS, f"{sent} round trips:\n{text}"
    # and the earn is stored: 7 earns of 100 points at the grocery's 1 point per 1 UAH
    with gw.services.engine.connect() as conn:
        balance = conn.execute(select(t.accounts.c.balance).where(
            t.accounts.c.code == member_account(_member(gw), AccountKind.WALLET))).scalar_one()
    assert balance == 7 * _points_of_one(gw)


def _member(gw: Gateway) -> str:
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.members.c.id)).scalar_one())


def _points_of_one(gw: Gateway) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(t.operations.c.points)
                                .where(t.operations.c.idempotency_key == "counted")).scalar_one())
