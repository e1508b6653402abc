"""One earn through the real ledger service, the real worker loop (``gateway.worker.loop.run``,
``once=True``) with the production consumers (``gateway.worker.consumers.build``, on the test's
clock) and a real HTTP receiver subscribed to the partner's events: the one earn reaches every
consumer, once, on this run's backend.

Kolos Grocery earns 1 point per 10.00 UAH: a purchase of 1,200.00 UAH earns 120 points. The
grocery's draw (tests/support/draws.py) gives 2 entries per purchase of 500.00 UAH or more; the
coalition's challenge asks for purchases at 2 brands this month, so one purchase is progress 1
of 2 (no bonus yet)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.draws.entries import held
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.members.secrets import reference_for
from gateway.notifications import store
from gateway.outbox import read_events
from gateway.webhooks import consumer_of, subscriptions
from gateway.worker.consumers import CONSUMERS, build
from gateway.worker.loop import Options, run
from tests.support.challenges import define, window_rows
from tests.support.draws import grocery_draw
from tests.support.harness import NOW, make_gateway
from tests.support.webhook_receiver import Receiver, receiving, verify


class Ceiling(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, clock=FixedClock(NOW))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


TWO_BRANDS: dict[str, Any] = {
    "id": "two-brands", "name": "2 brands this month", "badge": "explorer", "bonus_points": 50,
    "window": "month", "count": "brands", "target": 2}


def test_one_earn_reaches_the_webhook_the_feed_the_challenge_and_the_draw(
        gw: Gateway, receiver: Receiver) -> None:
    s = gw.services
    clock = s.clock
    assert isinstance(clock, FixedClock)
    define(gw, **TWO_BRANDS)
    draw = grocery_draw(gw)
    member_id = enrol_customer(s.engine, clock, "grocery", "c-1").member_id
    clock.advance(timedelta(seconds=1))  # the link's event predates the subscription
    made = subscriptions.create(s.engine, "grocery", receiver.url, ("points.earned",),
                                production=False, actor="test", now=clock.now())
    earned = earn_points(s.ledger, EarnPoints("grocery", "c-1", Money(120_000, "UAH"), "store",
                                              "p-1", "k-1"))
    assert earned.points == 120

    consumers = build(clock, lambda: s.ledger.tiers)
    assert [c.name for c in consumers] == [c.name for c in CONSUMERS]  # the production set
    options = Options(batch=50, timeout_s=5.0, concurrency=4)
    totals = run(s.engine, clock, consumers, options, once=True, rng=Ceiling())

    with UnitOfWork(s.engine, write=False) as uow:
        events = read_events(uow.conn, limit=1000)
        d = t.event_deliveries
        deliveries = uow.conn.execute(select(d.c.event_id, d.c.consumer, d.c.state,
                                             d.c.attempts)).all()
        entries = held(uow.conn, draw.id, member_id)
    (event,) = [e for e in events if e.type == "points.earned"]
    on_earn = {r.consumer: (r.state, r.attempts) for r in deliveries if r.event_id == event.id}
    assert on_earn == {"notifications": ("delivered", 1), "challenges": ("delivered", 1),
                       "draws": ("delivered", 1),
                       consumer_of(made.subscription.id): ("delivered", 1)}
    assert {r.state for r in deliveries} == {"delivered"}  # the link's, too
    assert totals.outcomes == Counter({"delivered": len(deliveries)})

    # the partner's webhook: once, signed, naming the member by the grocery's customer id
    (got,) = receiver.requests
    assert got.webhook_id == event.id
    assert verify(made.secret, got.webhook_id, got.timestamp, got.body, got.signature)
    reference = reference_for(s.engine, clock, "grocery", member_id)
    assert got.json["type"] == "points.earned"
    data = got.json["data"]
    assert (data["points"], data["amountMinor"], data["currency"], data["customerId"],
            data["memberReference"]) == (120, 120_000, "UAH", "c-1", reference)
    assert member_id not in got.body.decode()

    # the member's feed
    feed = store.feed(s.engine, member_id, 10, None).items
    assert [(n.kind, n.title) for n in feed] == [
        ("points_earned", "You earned 120 points at Kolos Grocery")]

    # challenge progress: one brand of two, no bonus yet
    [window] = window_rows(gw, "two-brands", member_id)
    assert (window["done"], window["completions"], window["completed_at"]) == (1, 0, None)

    # the draw: 2 entries for the 1,200.00 UAH purchase
    assert entries == 2

    # a second run finds nothing to do and sends nothing again
    again = run(s.engine, clock, consumers, options, once=True, rng=Ceiling())
    assert (again.events, again.deliveries, again.outcomes) == (0, 0, Counter())
    assert len(receiver.requests) == 1
