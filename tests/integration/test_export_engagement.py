"""A member's data export (GDPR art. 20) holds what the engagement parts keep about them
(issue 13): the notification feed and email preference, and prize draw entries; nobody else's.
Grocery earns 1 point per 10.00 UAH; the draw gives 2 entries per grocery purchase of 100.00 UAH
or more."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.draws import CONSUMER as DRAWS
from gateway.draws.model import DrawTerms, Prize
from gateway.draws.service import create_draw
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.members.export import export_member
from gateway.notifications.consumer import make_consumer
from gateway.outbox import read_events
from tests.support.harness import NOW, make_gateway


def test_the_export_holds_the_feed_and_the_draw_entries(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, clock=FixedClock(NOW))
    s = gw.services
    draw = create_draw(s.engine, s.rules, NOW, "grocery", DrawTerms(
        "Grocery draw", NOW, NOW + timedelta(days=7), (Prize("Bike", 1),), 10,
        entries_per_purchase=2, min_spend=Money(10_000, "UAH")), "test")
    ada = enrol_customer(s.engine, s.clock, "grocery", "c-1").member_id
    bob = enrol_customer(s.engine, s.clock, "grocery", "c-2").member_id
    for customer, key in (("c-1", "a"), ("c-2", "b")):
        earn_points(s.ledger, EarnPoints("grocery", customer, Money(120_000, "UAH"), "store",
                                         key, key))
    notify = make_consumer(s.clock, lambda: s.ledger.tiers)
    with s.engine.connect() as conn:
        events = read_events(conn, limit=1000)
    for event in events:
        for consumer in (notify, DRAWS):
            if event.type in consumer.types:
                consumer.handle(s.engine, event)

    mine = json.loads(export_member(s.engine, s.clock, ada))
    assert [(n["kind"], n["read_at"]) for n in mine["notifications"]] == [
        ("points_earned", None)]
    assert "120" in mine["notifications"][0]["body"]
    assert mine["notification_email"] is True
    assert [(e["draw_id"], e["source"], e["entries"]) for e in mine["draw_entries"]] == [
        (draw.id, "purchase", 2)]
    assert mine["badges"] == []
    theirs = json.loads(export_member(s.engine, s.clock, bob))
    # Each export holds its member's rows only: one notification and one entry row each.
    assert len(theirs["notifications"]) == 1 and len(theirs["draw_entries"]) == 1
