"""docs/campaigns.md sections 11 (Coupons) and 12 (Referrals) are run, not just read: their
GraphQL examples in order (each ```graphql block with the ```json block after it, whose
``expect`` keys must equal the answer's), then the CLI session (each ``$ gateway ...`` line
with the files of the ```text blocks), whose printed lines must be those shown. Seeded with
the grocery's member g-1 and Olena (customer ``olena``), whose referral code is K7QM-2XHP."""

from __future__ import annotations

import argparse
import io
import json
import re
import shlex
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from gateway.db import tables as t
from gateway.promotions import coupons_cli
from gateway.promotions.coupons import ALPHABET
from tests.api.test_campaigns_guide import GUIDE, _typenames
from tests.api.test_points_api import ENROL, world
from tests.support.harness import NOW
from tests.support.members import member_id_of

BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def sections() -> list[tuple[str, str]]:
    text = "\n## 11. Coupons" + GUIDE.read_text().split("\n## 11. Coupons", 1)[1]
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


async def test_the_coupon_and_referral_sections_run_in_order(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await w.grocery.gql(ENROL, {"c": "olena"})
    olena = member_id_of(w.gw, "grocery", "olena")
    with w.gw.services.engine.begin() as conn:
        conn.execute(insert(t.referral_codes).values(member_id=olena, code="K7QM2XHP",
                                                     created_at=NOW.astimezone(UTC)))
    found = sections()
    pairs = [(text, json.loads(found[i + 1][1])) for i, (kind, text) in enumerate(found)
             if kind == "graphql"]
    assert len(pairs) == 11
    results = []
    for query, variables in pairs:
        expect = variables.pop("expect", None)
        data = await w.grocery.gql(query, variables)
        (result,) = data.values()
        assert not any(name.endswith("Error") for name in _typenames(result)), result
        if expect is not None:
            assert {k: result[k] for k in expect} == expect, query
        if "createCampaign" in query:
            w.gw.services.ledger.campaigns.reload()  # type: ignore[attr-defined]
        results.append(result)
    assert len(results[2]["codes"]) == 100

    for _, text in (b for b in found if b[0] == "text"):
        name = text.splitlines()[0].removeprefix("# ").strip()
        (tmp_path / name).write_text(text)
    out = io.StringIO()
    root = argparse.ArgumentParser(prog="gateway")
    coupons_cli.register(root.add_subparsers(dest="command", required=True),
                         lambda: w.gw.services, out=out)
    [session] = [text for kind, text in found if kind == "console"]
    commands = 0
    for command, shown in re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", session, re.M):
        argv = [str(tmp_path / a) if a.endswith(".txt") else a
                for a in shlex.split(command)[1:]]
        out.seek(0)
        out.truncate()
        args = root.parse_args(argv)
        assert args.func(args) == 0, command
        assert out.getvalue().splitlines() == shown.splitlines(), command
        commands += 1
    assert commands == 2


async def test_cli_issue_prints_the_codes_once_and_refusals_name_their_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = await world(tmp_path)
    created = await w.grocery.gql(
        """mutation($input: CampaignInput!) { createCampaign(input: $input) { __typename } }""",
        {"input": {"id": "spring", "name": "Spring", "validFrom": "2026-11-01T00:00:00Z",
                   "conditions": {"couponPresented": True},
                   "effects": [{"bonusPoints": {"points": 200}}]}})
    assert created["createCampaign"]["__typename"] == "CreateCampaignSuccess"
    out = io.StringIO()
    root = argparse.ArgumentParser(prog="gateway")
    coupons_cli.register(root.add_subparsers(dest="command", required=True),
                         lambda: w.gw.services, out=out)
    args = root.parse_args(["coupons", "issue", "spring", "--partner", "grocery", "--count",
                            "3", "--max-uses", "2", "--expires", "2027-01-01T00:00:00+00:00"])
    assert args.func(args) == 0
    codes = out.getvalue().splitlines()
    symbol = f"[{ALPHABET}]"
    assert len(set(codes)) == 3
    assert all(re.fullmatch(f"{symbol}{{4}}-{symbol}{{4}}-{symbol}{{4}}", c) for c in codes)
    out.seek(0)
    out.truncate()
    args = root.parse_args(["coupons", "show", codes[0].lower(), "--partner", "grocery"])
    assert args.func(args) == 0
    assert out.getvalue() == (f"...{codes[0][-4:]} grocery:spring valid uses 0/2 per-member "
                              "none expires 2027-01-01T00:00:00+00:00\n")
    for argv, message in (
            (["coupons", "issue", "nope", "--partner", "grocery", "--count", "1"],
             "error: no campaign of yours has this id (field campaignId)\n"),
            (["coupons", "show", codes[0], "--partner", "electronics"],
             "error: no coupon of yours has this code (field code)\n"),
            (["coupons", "issue", "spring", "--partner", "grocery", "--count", "1",
              "--expires", "soon"], "error: --expires is not an ISO 8601 time (field "
             "expiresAt)\n")):
        capsys.readouterr()
        args = root.parse_args(argv)
        assert args.func(args) == 2
        assert capsys.readouterr().err == message
    with w.gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.coupons)).scalar_one() == 3
