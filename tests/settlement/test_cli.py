"""``gateway settlement report|close|reconcile|export`` on the worked example's database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gateway.settlement import cli
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
    assert code == 0 and "electronics" in text and "-2.69" in text
    assert "[##############################] 4/4" in capsys.readouterr().err
    assert "net-positions" in (tmp_path / "r.html").read_text()
    code, text = run(gw, ["settlement", "report", *PERIOD, "--format", "csv"])
    assert text.splitlines()[2].startswith("electronics,merchant,,333,367,0,0,100,100,")
    code, body = run(gw, ["settlement", "report", *PERIOD, "--format", "json"])
    digest = json.loads(body)["sha256"]
    code, text = run(gw, ["settlement", "close", *PERIOD, "--actor", "finance@test"])
    assert code == 0 and digest in text and JAN.id in text
    code, _ = run(gw, ["settlement", "close", *PERIOD])
    assert code == 2 and "closed already" in capsys.readouterr().err
    code, body = run(gw, ["settlement", "export", *PERIOD])
    assert json.loads(body)["coalition"]["net_minor"] == 288
    statement = tmp_path / "s.csv"
    statement.write_text("partner_reference,operation_type,points,amount_minor,currency,"
                         "occurred_at\nearn-e-p1,earn,330,33300,EUR,2026-01-10T10:01:00Z\n")
    code, text = run(gw, ["settlement", "reconcile", *PERIOD, "--partner", "electronics",
                          "--file", str(statement)])
    assert code == 0 and "earn-e-p1" in text and "330" in text and "333" in text
