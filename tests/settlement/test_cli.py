"""``gateway settlement report|close|reconcile|export`` on the worked example's database."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from gateway.settlement import cli
from gateway.settlement.repository import SettlementRepository
from gateway.settlement.service import closed_periods, settlement_report
from tests.settlement.scenario import JAN, run_worked_example

PERIOD = ["--start", "2026-01-01T00:00:00Z", "--end", "2026-02-01T00:00:00Z"]


def run(gw, argv: list[str]) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    import argparse

    out = io.StringIO()
    root = argparse.ArgumentParser()
    cli.register(root.add_subparsers(dest="c"), lambda: gw.services, out=out)
    args = root.parse_args(argv)
    return int(args.func(args)), out.getvalue()


def test_report_close_export_reconcile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    code, text = run(gw, ["settlement", "report", *PERIOD, "--html", str(tmp_path / "r.html")])
    assert code == 0 and "Volt Electronics" in text and "-2.69" in text
    assert "[##############################] 4/4" in capsys.readouterr().err
    assert "net-positions" in (tmp_path / "r.html").read_text()
    code, text = run(gw, ["settlement", "report", *PERIOD, "--format", "csv"])
    assert text.splitlines()[2] == (
        "electronics,merchant,,333,367,0,0,100,100,0,0,0,0,2,-269,Volt Electronics,0,0,0,0")
    assert text.splitlines()[5] == "coalition,coalition,,,,,,,,,,,,,288,Coalition,0,0,0,0"
    code, body = run(gw, ["settlement", "report", *PERIOD, "--format", "json"])
    digest = json.loads(body)["sha256"]
    code, text = run(gw, ["settlement", "close", *PERIOD, "--actor", "finance@test"])
    assert code == 0 and digest in text and JAN.id in text
    code, _ = run(gw, ["settlement", "close", *PERIOD])
    assert code == 2 and "closed already" in capsys.readouterr().err
    # Closed: read from the snapshot, or recomputed from the ledger, the same report.
    code, served = run(gw, ["settlement", "report", *PERIOD, "--format", "json"])
    assert code == 0 and json.loads(served)["sha256"] == digest
    code, again = run(gw, ["settlement", "report", *PERIOD, "--format", "json", "--recompute"])
    assert code == 0 and again == served
    code, _ = run(gw, ["settlement", "report", "--start", "2026-02-01T00:00Z", "--end",
                       "2026-03-01T00:00Z", "--recompute"])
    assert code == 2 and "not closed" in capsys.readouterr().err
    code, body = run(gw, ["settlement", "export", *PERIOD])
    assert json.loads(body)["coalition"]["net_minor"] == 288
    statement = tmp_path / "s.csv"
    statement.write_text("partner_reference,operation_type,points,amount_minor,currency,"
                         "occurred_at\nearn-e-p1,earn,330,33300,EUR,2026-01-10T10:01:00Z\n")
    code, text = run(gw, ["settlement", "reconcile", *PERIOD, "--partner", "electronics",
                          "--file", str(statement)])
    assert code == 1 and "earn-e-p1" in text and "330" in text and "333" in text


def test_export_json_is_exactly_the_hashed_bytes(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)  # January closed
    (closed,) = closed_periods(gw.services.engine)
    code, body = run(gw, ["settlement", "export", *PERIOD])
    exported = tmp_path / "january.json"
    exported.write_bytes(body.encode("ascii"))
    assert code == 0 and not body.endswith("\n")
    assert hashlib.sha256(exported.read_bytes()).hexdigest() == closed.sha256
    sha256sum = subprocess.run(["sha256sum", str(exported)], capture_output=True, text=True,
                               check=True).stdout.split()[0]
    assert sha256sum == closed.sha256


def test_reconcile_exits_1_on_differences_and_names_statement_lines(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    code, own = run(gw, ["settlement", "statement", *PERIOD, "--partner", "electronics"])
    assert code == 0 and own == (
        "partner_reference,operation_type,points,amount_minor,currency,occurred_at,recorded_at\n"
        "earn-e-p1,earn,333,33300,EUR,2026-01-10T10:01:00+00:00,2026-01-10T10:01:00+00:00\n"
        "e-r1,redeem,-100,5000,EUR,2026-01-10T10:02:00+00:00,2026-01-10T10:02:00+00:00\n")
    statement = tmp_path / "s.csv"
    statement.write_text(own)
    code, text = run(gw, ["settlement", "reconcile", *PERIOD, "--partner", "electronics",
                          "--file", str(statement)])
    assert code == 0 and text.splitlines()[2].split() == ["matched", "2", "233", "38300"]
    statement.write_text(own.replace(",333,", ",330,") + "x-9,earn,1,,,2026-01-11T00:00Z,\n")
    code, body = run(gw, ["settlement", "reconcile", *PERIOD, "--partner", "electronics",
                          "--file", str(statement), "--format", "json"])
    found = json.loads(body)
    assert code == 1
    assert found["mismatched"] == [{"partner_reference": "earn-e-p1", "line": 2,
                                    "differences": [["points", "330", "333"]]}]
    assert found["missing_in_ledger"] == [{"partner_reference": "x-9", "line": 4}]
    code, text = run(gw, ["settlement", "reconcile", *PERIOD, "--partner", "electronics",
                          "--file", str(statement)])
    assert code == 1 and [row.split() for row in text.splitlines()[-2:]] == [
        ["2", "earn-e-p1", "points", "330", "333"], ["4", "x-9", "missing", "in", "ledger"]]
    code, _ = run(gw, ["settlement", "reconcile", *PERIOD, "--partner", "grocey",
                       "--file", str(statement)])
    assert code == 2


def test_rollup_stores_the_final_days_once(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    from_rows = settlement_report(gw.services.engine, gw.services.rules, JAN, "EUR")
    code, text = run(gw, ["settlement", "rollup"])
    assert code == 0 and text.startswith("rolled up ") and text != "rolled up 0 days\n", text
    code, text = run(gw, ["settlement", "rollup"])
    assert code == 0 and text == "rolled up 0 days\n"
    with gw.services.engine.connect() as conn:
        assert SettlementRepository(conn).rolled_days(JAN.start.date(), JAN.end.date())
    code, again = run(gw, ["settlement", "report", *PERIOD, "--format", "json"])
    assert code == 0 and json.loads(again)["sha256"] == from_rows.sha256
