"""A closed period is read from its stored snapshot, never from the ledger (issue 11).

Reading a closed period's report sends a fixed handful of statements, none of which touches
the ledger's tables, each an index lookup (SQLite's ``EXPLAIN QUERY PLAN`` with the parameters
it ran with): its cost does not grow with the number of operations. An open period is still
computed from the ledger, and recomputing a closed one reproduces the snapshot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import event

from gateway.settlement.service import recompute_closed, settlement_report, snapshot
from tests.settlement.scenario import FEB, JAN, run_worked_example

LEDGER = re.compile(r"\b(operations|transfers|lot_movements|lots|accounts)\b")


def _recorded(engine: Any, run: Any) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def test_a_closed_period_is_served_from_its_snapshot_without_reading_the_ledger(
        tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    engine, rules = gw.services.engine, gw.services.rules
    body, digest = snapshot(engine, JAN.id)
    served: list[Any] = []
    sent = _recorded(engine, lambda: served.append(settlement_report(engine, rules, JAN, "EUR")))
    assert served[0].canonical_json() == body and served[0].sha256 == digest
    queries = [(s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1, queries
    assert [s for s, _ in queries if LEDGER.search(s)] == []
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        for statement, parameters in queries:
            plan = [str(r[3]) for r in dbapi.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                     parameters).fetchall()]
            assert [d for d in plan if d.startswith("SCAN ")] == [], (statement, plan)

    # An open period is computed from the ledger (its statements read the operations).
    sent = _recorded(engine, lambda: settlement_report(engine, rules, FEB, "EUR"))
    assert any(re.search(r"\bFROM operations\b", s) for s, _ in sent)
    # and recomputing the closed one reads the ledger and reproduces the stored hash.
    again: list[Any] = []
    sent = _recorded(engine, lambda: again.append(recompute_closed(engine, rules, JAN, "EUR")))
    assert again[0].sha256 == digest
    assert any(re.search(r"\bFROM operations\b", s) for s, _ in sent)


def test_an_open_period_reads_the_period_through_indexes(tmp_path: Path) -> None:
    """The report's passes are bounded by the period: the operations are found through
    ``ix_operations_recorded`` (transfers) and the partial ``ix_operations_settled_lots``
    (redemptions and returns, no earn); no ledger table is scanned whole."""
    gw, _ = run_worked_example(tmp_path)
    engine, rules = gw.services.engine, gw.services.rules
    sent = _recorded(engine, lambda: settlement_report(engine, rules, FEB, "EUR"))
    plans: list[str] = []
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        for statement, parameters in sent:
            if statement.lstrip().upper().startswith("SELECT") and LEDGER.search(statement):
                plans += [str(r[3]) for r in dbapi.execute(
                    f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()]
    scans = [d for d in plans if re.match(
        r"SCAN (o|capture|parent|operations|transfers|lot_movements|lots)\b", d)]
    assert scans == [], plans
    assert sum("INDEX ix_operations_recorded " in d for d in plans) == 1, plans
    # returns priced at their earn, lot movements, captures
    assert sum("INDEX ix_operations_settled_lots " in d for d in plans) == 3, plans
