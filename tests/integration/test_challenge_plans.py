"""The challenges' reads are indexed and bounded (DESIGN §11): every statement the consumer
sends for earns and returns (progress, windows, the bonus and its reversal), and the member's and
the partner's views, has its plan asked of SQLite (``EXPLAIN QUERY PLAN`` with its parameters).
A ``SCAN`` means the cost grows with a table, not with the member's activity in the window.
Always SQLite (the plans checked are SQLite's), like test_hot_path_plans."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.challenges import service as challenges
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from tests.integration.test_hot_path_plans import _assert_bounded
from tests.support import harness
from tests.support.challenges import Drain, bonus_operations, define
from tests.support.harness import make_gateway

# The definitions in force: a table of the coalition's and partners' challenges (at most 100
# read), not of members or their activity.
ALLOWED_SCANS = (re.compile(r"FROM challenges\s+WHERE challenges.starts_at <="),)


def test_consumer_and_views_use_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.support.harness.database_url",
                        lambda p: f"sqlite:///{p / 'plans.db'}")
    assert harness.test_settings(tmp_path).database_url.startswith("sqlite")
    clock = FixedClock(datetime(2026, 11, 2, 10, tzinfo=UTC))
    gw = make_gateway(tmp_path, clock=clock)
    define(gw, "grocery", id="two", name="Two", badge="two", bonus_points=40, window="month",
           count="purchases", target=2)
    define(gw, id="streak", name="Streak", badge="s", bonus_points=5, window="streak",
           count="weeks", target=3)
    define(gw, id="rolling", name="Rolling", badge="r", bonus_points=5, window="rolling",
           days=30, count="purchases", target=9)
    drain = Drain(gw, clock)
    s = gw.services
    member = enrol_customer(s.engine, clock, "grocery", "g-1").member_id
    for n in range(30):  # a history before the statements recorded
        service.earn_points(s.ledger, m.EarnPoints("grocery", "g-1", Money(10_000, "UAH"),
                                                   "store", f"old-{n}", f"old-{n}"))
        clock.advance(timedelta(days=3))
    drain()

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(
                ("SELECT", "UPDATE", "DELETE", "WITH")):
            seen.append((statement, parameters))

    clock.set(datetime(2027, 3, 1, 10, tzinfo=UTC))  # a new month: "two" completes, is undone
    for n in range(2):
        service.earn_points(s.ledger, m.EarnPoints("grocery", "g-1", Money(10_000, "UAH"),
                                                   "store", f"p-{n}", f"p-{n}"))
    service.return_purchase(s.ledger, m.ReturnPurchase("grocery", "p-1", Money(10_000, "UAH"),
                                                       "ret"))
    event.listen(s.engine, "before_cursor_execute", record)
    try:
        drain()  # completes "two", then the return undoes it
        drain.replay()
        challenges.member_challenges(s.engine, member, clock.now())
        challenges.member_badges(s.engine, member)
        challenges.owned(s.engine, "grocery", clock.now())
        challenges.owned(s.engine, "coalition", clock.now())
    finally:
        event.remove(s.engine, "before_cursor_execute", record)
    assert [o["kind"] for o in bonus_operations(gw, member)][-2:] == ["bonus", "return"]
    for table in ("challenge_windows", "challenge_progress", "member_badges", "rule_versions"):
        assert any(f"FROM {table}" in st for st, _ in seen), table  # the bonus path ran too
    # The test's own read of the outbox (read_events) is not the consumer.
    _assert_bounded(s.engine, [(st, p) for st, p in seen if "outbox" not in st],
                    allowed=ALLOWED_SCANS, what="not bounded by the member's window")
