"""``gateway funding show|set|topup``: terms and top-ups from the terminal, a table out, typed
errors naming the field (exit 2, nothing written)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.db import tables as t
from gateway.ledger.runner import transact
from gateway.promotions import funding
from gateway.settlement import funding_cli
from tests.support.harness import make_gateway


def run(gw, argv: list[str]) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    root = argparse.ArgumentParser()
    funding_cli.register(root.add_subparsers(dest="c"), lambda: gw.services, out=out)
    args = root.parse_args(argv)
    return int(args.func(args)), out.getvalue()


def _events(gw) -> int:  # type: ignore[no-untyped-def]
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.funding_events)).scalar_one())


def test_set_topup_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gw = make_gateway(tmp_path)
    assert run(gw, ["funding", "show"]) == (
        0, "no funder has a funding account (every funder is unlimited)\n")
    code, text = run(gw, ["funding", "set", "--funder", "electronics", "--mode", "credit",
                          "--limit", "1000", "--actor", "finance:ana"])
    assert code == 0 and "electronics  credit  refuse   1000" in text
    code, text = run(gw, ["funding", "set", "--funder", "grocery", "--mode", "prepaid",
                          "--policy", "alert"])
    assert code == 0
    code, text = run(gw, ["funding", "topup", "--funder", "grocery", "--points", "400",
                          "--note", "invoice 12", "--actor", "finance:ana"])
    assert code == 0
    now = gw.services.clock.now()
    transact(gw.services.engine, lambda conn: funding.charge(conn, "electronics", 250, now))
    code, text = run(gw, ["funding", "show"])
    lines = text.splitlines()
    assert code == 0 and lines[0].split() == [
        "funder", "mode", "policy", "limit", "funded", "issued", "reversed", "exposure",
        "left", "alerts", "exposure", "money"]
    # electronics: 250 issued on credit, exposure 250 x 1.1 = 275 minor = 2.75 EUR.
    assert lines[2].split() == ["electronics", "credit", "refuse", "1000", "0", "250", "0",
                                "250", "750", "0", "2.75", "EUR"]
    assert lines[3].split() == ["grocery", "prepaid", "alert", "0", "400", "0", "0", "0",
                                "400", "0", "0.00", "EUR"]
    code, text = run(gw, ["funding", "show", "--funder", "grocery"])
    assert code == 0 and "topup" in text and "invoice 12" in text and "finance:ana" in text
    before = _events(gw)
    for argv, field in ((["set", "--funder", "grocery", "--limit", "5"], "limit"),
                        (["set", "--funder", "nowhere", "--mode", "credit"], "funder"),
                        (["topup", "--funder", "fuel", "--points", "5"], "funder"),
                        (["topup", "--funder", "grocery", "--points", "-5"], "points")):
        assert run(gw, ["funding", *argv])[0] == 2
        assert f"error ({field}):" in capsys.readouterr().err
    assert _events(gw) == before
