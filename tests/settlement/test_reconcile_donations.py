"""A charity's own statement round-trips: donations (a member's command, so no partner key) are
exported by ``statement_csv`` under their operation id with type ``donate``, and reconciling that
file back matches every line. Before ``donate`` was an accepted type, the export of a charity
either left its donations out or could not be imported back."""

from __future__ import annotations

from pathlib import Path

from gateway.ledger.member_ops import donate_points
from gateway.settlement.reconcile import parse_statement, reconcile, statement_csv
from tests.settlement.test_member_actions import NOV, setup


def test_a_charity_statement_with_donations_reconciles_back_cleanly(tmp_path: Path) -> None:
    gw, _, a, b = setup(tmp_path)
    first = donate_points(gw.services.ledger, a, "charity", 55, "d-1")
    second = donate_points(gw.services.ledger, b, "charity", 30, "d-1")
    engine = gw.services.engine
    text, count = statement_csv(engine, "charity", NOV)
    assert count == 2
    lines = text.splitlines()
    assert lines[0] == ("partner_reference,operation_type,points,amount_minor,currency,"
                        "occurred_at,recorded_at")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        [first.operation_id, "donate", "-55"], [second.operation_id, "donate", "-30"]]
    assert sorted(parse_statement(text)) == sorted([first.operation_id, second.operation_id])
    r = reconcile(engine, "charity", NOV, text)
    assert [x.partner_reference for x in r.matched] == [first.operation_id, second.operation_id]
    assert (r.missing_in_ledger, r.missing_in_statement, r.mismatched) == ([], [], [])
    assert (r.totals()["matched"].count, r.totals()["matched"].points) == (2, -85)


def test_a_donation_line_the_ledger_lacks_is_missing_in_ledger(tmp_path: Path) -> None:
    gw, _, a, _ = setup(tmp_path)
    donate_points(gw.services.ledger, a, "charity", 55, "d-1")
    text, _ = statement_csv(gw.services.engine, "charity", NOV)
    extra = text + "op-not-ours,donate,-5,,,2026-11-23T10:00:00+00:00,\n"
    r = reconcile(gw.services.engine, "charity", NOV, extra)
    assert len(r.matched) == 1
    assert [x.partner_reference for x in r.missing_in_ledger] == ["op-not-ours"]
    assert r.missing_in_statement == [] and r.mismatched == []
