"""``gateway members import-links``: links from a legacy program, validated whole before
anything is written, each recorded with via ``legacy_import`` and an audit_log row."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.members.cli import register
from gateway.members.identity import luhn_check_digit
from tests.support.harness import NOW, ledger_snapshot, make_gateway


@dataclass
class Ctx:
    engine: Engine
    clock: FixedClock


def run(ctx: Ctx, path: Path) -> int:
    root = argparse.ArgumentParser()
    register(root.add_subparsers(dest="command", required=True), lambda: ctx)
    args = root.parse_args(["members", "import-links", str(path), "--actor", "ops"])
    code: int = args.func(args)
    return code


def test_import_links_all_or_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    engine = gw.services.engine
    one = enrol_customer(engine, clock, "grocery", "g-1")
    two = enrol_customer(engine, clock, "grocery", "g-2")
    assert one.card_number and two.card_number
    ctx = Ctx(engine, clock)
    body = "9" + "1" * 14
    stranger = body + luhn_check_digit(body)

    bad = tmp_path / "bad.csv"
    bad.write_text("card_number,partner_id,customer_id\n"
                   f"{one.card_number},fuel,f-1\n"
                   f"{two.card_number},nowhere,f-2\n"
                   f"1234,fuel,f-3\n"
                   f"{stranger},fuel,f-4\n"
                   f"{two.card_number},fuel,f-1\n"
                   f"{one.card_number},fuel,f-5\n"
                   f"{two.card_number},fuel,\n"
                   f"{two.card_number},fuel\n")
    before = ledger_snapshot(gw)
    assert run(ctx, bad) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {bad}: 7 error(s); nothing was imported",
        "  line 3, column partner_id: no partner 'nowhere'",
        "  line 4, column card_number: not a coalition card number (16 digits, Luhn)",
        "  line 5, column card_number: no active member has this card",
        "  line 6, column customer_id: 'f-1' at 'fuel' is on line 2 already",
        "  line 7, column card_number: this member is linked at 'fuel' on line 2 already",
        "  line 8, column customer_id: must be 1 to 128 characters, not blank",
        "  line 9: 2 columns, expected 3",
    ]
    assert ledger_snapshot(gw) == before

    good = tmp_path / "good.csv"
    good.write_text("partner_id,customer_id,card_number\n"
                    f"fuel,f-1,{one.card_number}\n"
                    f"electronics,e-2,{two.card_number.replace('', ' ').strip()}\n")
    assert run(ctx, good) == 0
    assert capsys.readouterr().out == "2 links imported, 0 already there\n"
    with engine.connect() as conn:
        links = conn.execute(select(t.linked_accounts.c.partner_id,
                                    t.linked_accounts.c.customer_id,
                                    t.linked_accounts.c.member_id,
                                    t.linked_accounts.c.consent_via)
                             .where(t.linked_accounts.c.consent_via == "legacy_import")
                             .order_by(t.linked_accounts.c.partner_id)).all()
        audits = conn.execute(select(t.audit_log.c.actor, t.audit_log.c.action,
                                     t.audit_log.c.subject, t.audit_log.c.detail)
                              .where(t.audit_log.c.action == "members.link_imported")
                              .order_by(t.audit_log.c.id)).all()
    assert [tuple(r) for r in links] == [
        ("electronics", "e-2", two.member_id, "legacy_import"),
        ("fuel", "f-1", one.member_id, "legacy_import")]
    assert [(a, b, c, json.loads(d)) for a, b, c, d in audits] == [
        ("admin:ops", "members.link_imported", "fuel:f-1",
         {"partner_id": "fuel", "customer_id": "f-1", "member_id": one.member_id, "line": 2}),
        ("admin:ops", "members.link_imported", "electronics:e-2",
         {"partner_id": "electronics", "customer_id": "e-2", "member_id": two.member_id,
          "line": 3}),
    ]
    # The same file again changes nothing; a conflicting link is refused.
    assert run(ctx, good) == 0
    assert capsys.readouterr().out == "0 links imported, 2 already there\n"
    clash = tmp_path / "clash.csv"
    clash.write_text(f"partner_id,customer_id,card_number\nfuel,f-1,{two.card_number}\n"
                     f"fuel,f-9,{one.card_number}\n")
    before = ledger_snapshot(gw)
    assert run(ctx, clash) == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  line 2, column customer_id: 'f-1' is linked to another member at 'fuel'",
        "  line 3, column card_number: this member is linked at 'fuel' under another "
        "customer id"]
    assert ledger_snapshot(gw) == before
