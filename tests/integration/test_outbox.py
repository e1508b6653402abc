"""The transactional outbox (decision 029) on this run's real database: each operation writes
exactly one event in its own transaction, carrying its figures; a replay writes none; a refused
command writes none; a member's link and a campaign's publish write theirs. Grocery earns
1 point per 10.00 UAH (floor): 1,200.00 UAH earns 120 base points."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.core.errors import PurchaseAlreadyRecorded
from gateway.core.money import Money
from gateway.db.uow import UnitOfWork
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints, ReturnPurchase
from gateway.ledger.service import earn_points, return_purchase
from gateway.outbox import Event, read_events
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import make_gateway


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path)


def events(gw: Gateway) -> list[Event]:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        return read_events(uow.conn, limit=1000)


def earn(gw: Gateway, minor: int, key: str, purchase: str) -> None:
    earn_points(gw.services.ledger, EarnPoints(
        "grocery", "c-1", Money(minor, "UAH"), "store", purchase, key))


def test_an_earn_and_its_return_write_one_event_each_with_their_figures(gw: Gateway) -> None:
    membership = enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    earn(gw, 120_000, "k-1", "p-1")
    return_purchase(gw.services.ledger, ReturnPurchase("grocery", "p-1", Money(60_000, "UAH"),
                                                       "r-1"))
    ledger = [e for e in events(gw) if e.type.startswith("points.")]
    assert [e.type for e in ledger] == ["points.earned", "points.returned"]
    earned, returned = ledger
    assert earned.partner_id == "grocery" and earned.member_id == membership.member_id
    assert earned.data["points"] == 120 and earned.data["amount_minor"] == 120_000
    assert earned.data["currency"] == "UAH" and earned.data["purchase_id"] == "p-1"
    assert earned.data["kind"] == "earn" and earned.operation_id == earned.data["operation_id"]
    assert returned.data["points"] == -60 and returned.data["parent_id"] == earned.operation_id
    assert earned.id < returned.id  # time-ordered ids


def test_a_replay_and_a_refused_command_write_no_event(gw: Gateway) -> None:
    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    earn(gw, 120_000, "k-1", "p-1")
    earn(gw, 120_000, "k-1", "p-1")  # the same key and request: a replay
    with pytest.raises(PurchaseAlreadyRecorded):
        earn(gw, 120_000, "k-2", "p-1")  # another key for a recorded purchase: refused
    assert [e.type for e in events(gw) if e.type.startswith("points.")] == ["points.earned"]


def test_a_link_and_a_publish_write_their_events(gw: Gateway) -> None:
    membership = enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    publish(gw, bonus_campaign("bonus", 50))
    by_type = {e.type: e for e in events(gw)}
    linked = by_type["member.linked"]
    assert (linked.partner_id, linked.member_id) == ("grocery", membership.member_id)
    assert linked.data["customer_id"] == "c-1"
    published = by_type["campaign.published"]
    assert published.partner_id == "grocery" and published.data["version"] == 1
    assert published.data["campaign_id"].endswith("bonus")
