"""``gateway challenges sync|define|end|list`` on this run's backend: the coalition's file
synced, a partner's challenge defined from a file, a refusal printed naming the field (exit 2,
nothing written), ended, listed with counts."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.challenges import cli
from gateway.db import tables as t
from tests.support.challenges import count
from tests.support.harness import make_gateway


def run(gw: Gateway, argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    root = argparse.ArgumentParser()
    cli.register(root.add_subparsers(dest="c"), lambda: gw.services, out=out)
    args = root.parse_args(argv)
    return int(args.func(args)), out.getvalue()


def test_sync_define_end_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gw = make_gateway(tmp_path)
    code, text = run(gw, ["challenges", "sync", "--actor", "ops:ana"])
    assert code == 0 and text.endswith("3 coalition challenges in "
                                       f"{gw.services.settings.catalog_dir}/coalition/"
                                       "challenges.toml\n")
    assert "three-brands v1 (coalition): 3 brands per month, +150 points" in text
    draft = tmp_path / "big-four.toml"
    draft.write_text('id = "big-four"\nname = "4 over 20.00"\nbadge = "regular"\n'
                     'bonus_points = 40\nwindow = "month"\ncount = "purchases"\ntarget = 4\n'
                     'min_spend_minor = 2000\ncurrency = "UAH"\n'
                     'starts_at = 2027-01-01T00:00:00Z\n')
    code, text = run(gw, ["challenges", "define", str(draft), "--owner", "grocery"])
    assert code == 0 and text.startswith("grocery:big-four v1 (grocery): 4 purchases per month")
    before = count(gw, t.challenge_versions)
    bad = tmp_path / "bad.toml"
    bad.write_text(draft.read_text().replace("target = 4", "target = 4.5"))
    assert run(gw, ["challenges", "define", str(bad), "--owner", "grocery"])[0] == 2
    assert "error: target: a whole number from 1 to 1000 (field target)" in capsys.readouterr().err
    assert count(gw, t.challenge_versions) == before
    code, text = run(gw, ["challenges", "end", "big-four", "--owner", "grocery",
                          "--at", "2027-02-01T00:00:00+00:00"])
    assert code == 0 and "v2" in text and "to 2027-02-01T00:00:00+00:00" in text
    code, text = run(gw, ["challenges", "list", "--owner", "grocery"])
    assert code == 0 and text.endswith("members in progress 0, completed 0\n")
    assert run(gw, ["challenges", "list", "--owner", "fuel"]) == (0, "no challenges of fuel\n")
