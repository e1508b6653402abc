"""The member's side of consent on a real database: link codes, store codes and unlinking, as
the member API and portal will call them; and a store code at the till (earn, spend, bind)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import UnknownMember
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.members import consent
from gateway.members.codes import LINK_CODE_TTL, STORE_CODE_TTL
from gateway.members.identity import CODE_ALPHABET, hash_code
from tests.support.harness import NOW, make_gateway
from tests.support.members import link_with_code


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Gateway, FixedClock, str]:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    member = enrol_customer(gw.services.engine, clock, "grocery", "g-1").member_id
    return gw, clock, member


def _count(gw: Gateway, table: Table) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_link_code_is_eight_characters_ten_minutes_hashed(
        setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    made = consent.create_link_code(gw.services.engine, clock, member)
    assert len(made.code) == 8 and set(made.code) <= set(CODE_ALPHABET)
    assert made.expires_at == NOW + LINK_CODE_TTL
    with gw.services.engine.connect() as conn:
        row = conn.execute(select(t.link_codes)).one()
    assert (row.code_hash, row.member_id, row.used_at) == (hash_code(made.code), member, None)
    assert made.code not in row.code_hash
    # Making another deletes nothing live; an expired one is cleared then.
    consent.create_link_code(gw.services.engine, clock, member)
    assert _count(gw, t.link_codes) == 2
    clock.advance(LINK_CODE_TTL)
    consent.create_link_code(gw.services.engine, clock, member)
    assert _count(gw, t.link_codes) == 1


def test_unknown_member_makes_no_code(setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, _ = setup
    with pytest.raises(UnknownMember):
        consent.create_link_code(gw.services.engine, clock, "mem_nope")
    with pytest.raises(UnknownMember):
        consent.issue_store_code(gw.services.engine, clock, "mem_nope")
    assert _count(gw, t.link_codes) == 0
    assert _count(gw, t.store_codes) == 0


def test_store_code_rotates_each_minute(setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    shown = consent.issue_store_code(gw.services.engine, clock, member)
    assert shown.expires_at == (NOW + STORE_CODE_TTL).replace(microsecond=0)
    assert len(shown.digits) == 14 and shown.digits.replace(" ", "").isdigit()
    assert shown.qr_text.startswith("CGSC1." + shown.digits.replace(" ", "") + ".")
    with gw.services.engine.connect() as conn:
        row = conn.execute(select(t.store_codes)).one()
    assert (row.member_id, row.partner_id, row.consented_at) == (member, None, None)
    clock.advance(STORE_CODE_TTL)
    consent.issue_store_code(gw.services.engine, clock, member)
    assert _count(gw, t.store_codes) == 1  # the expired one is gone


def test_store_code_binds_to_the_first_partner_and_gives_one_consent(
        setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    engine = gw.services.engine
    shown = consent.issue_store_code(engine, clock, member)
    secret = consent.store_code_secret(engine, clock)
    now = clock.now()

    def use(partner: str, text: str, *, spend: bool) -> str:
        with engine.begin() as conn:
            return consent.member_for_store_code(conn, now, secret, partner, text,
                                                 consent=spend)

    assert use("fuel", shown.qr_text, spend=False) == member
    assert use("fuel", shown.digits, spend=False) == member  # earns: any number of times
    with pytest.raises(UnknownMember):
        use("grocery", shown.qr_text, spend=False)  # bound to fuel now
    assert use("fuel", shown.digits, spend=True) == member
    with pytest.raises(UnknownMember):
        use("fuel", shown.qr_text, spend=True)  # its one consent use is taken
    tampered = shown.qr_text[:-1] + ("A" if shown.qr_text[-1] != "A" else "B")
    with pytest.raises(UnknownMember):
        use("fuel", tampered, spend=False)
    clock.advance(STORE_CODE_TTL)
    now = clock.now()
    with pytest.raises(UnknownMember):
        use("fuel", shown.digits, spend=False)


def test_unlink_closes_the_link_and_keeps_the_points(
        setup: tuple[Gateway, FixedClock, str]) -> None:
    gw, clock, member = setup
    engine = gw.services.engine
    link_with_code(engine, clock, "fuel", "f-1", member)
    clock.advance(timedelta(minutes=1))
    assert consent.unlink(engine, clock, member, "fuel", actor=f"member:{member}") is True
    assert consent.unlink(engine, clock, member, "fuel", actor=f"member:{member}") is False
    assert consent.unlink(engine, clock, "mem_nope", "fuel", actor="member:mem_nope") is False
    with engine.connect() as conn:
        events = conn.execute(select(t.link_events.c.action, t.link_events.c.via,
                                     t.link_events.c.actor)
                              .where(t.link_events.c.partner_id == "fuel")
                              .order_by(t.link_events.c.id)).all()
        closed = conn.execute(select(t.linked_accounts.c.closed_at).where(
            t.linked_accounts.c.partner_id == "fuel")).scalar_one()
    assert [tuple(e) for e in events] == [("linked", "link_code", "partner:fuel"),
                                          ("unlinked", "member", f"member:{member}")]
    assert closed == NOW + timedelta(minutes=1)
