"""Challenges and prize draws in the effectiveness report (decision 034): the same shape as a
campaign's, read from their own rows on this run's real database.

A coalition challenge "3 brands this month" pays 150 points: Alice shops at three brands and
completes it, Bob at one and does not. A grocery draw takes 2 entries per grocery purchase of
100.00 UAH or more: Alice's 1,000.00 UAH purchase gives her 2 entries, Bob's 50.00 none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.app import Gateway
from gateway.core.errors import NotFound
from gateway.core.money import Money
from gateway.draws import CONSUMER as DRAWS
from gateway.outbox import read_events
from gateway.reports import service as reports
from gateway.reports.effectiveness import Effectiveness
from tests.integration.test_challenges import THREE_BRANDS, clock, earn, gw, member
from tests.support.challenges import Drain, define

__all__ = ["clock", "gw"]  # the fixtures, shared with the challenges' tests


def effectiveness(gw: Gateway, kind: str, item_id: str, partner: str | None) -> Effectiveness:
    s = gw.services
    return reports.item_effectiveness(s.engine, s.rules, s.settings.settlement_currency,
                                      s.clock.now(), partner, item_id, kind)


def test_a_challenge_reads_like_a_campaign(gw: Gateway, clock: object) -> None:
    define(gw, **THREE_BRANDS)
    drain = Drain(gw, gw.services.clock)  # type: ignore[arg-type]
    alice, bob = member(gw, 1), member(gw, 2)
    earn(gw, "grocery", 100_000, "a-1", 1)
    earn(gw, "fuel", 40_000, "a-2", 1)
    earn(gw, "electronics", 10_000, "a-3", 1)
    earn(gw, "grocery", 100_000, "b-1", 2)
    drain()
    found = effectiveness(gw, "challenge", "three-brands", None)
    assert (found.item.kind, found.item.owner, found.members_reached, found.rewards,
            found.points_issued) == ("challenge", "coalition", 1, 1, 150)
    assert found.treated_members == 1 and found.holdout_members == 0
    assert found.cost_minor > 0  # 150 coalition points priced like settlement prices them
    assert alice != bob  # both enrolled and shopping; only Alice completed it
    with pytest.raises(NotFound) as refused:  # a partner never sees the coalition's challenge
        effectiveness(gw, "challenge", "three-brands", "grocery")
    assert refused.value.field == "challengeId"


def test_a_draw_reads_its_entrants(gw: Gateway, clock: object) -> None:
    from gateway.draws.model import DrawTerms, Prize
    from gateway.draws.service import create_draw

    s = gw.services
    now = s.clock.now()
    terms = DrawTerms("Grocery draw", now, now + timedelta(days=7), (Prize("Bike", 1),), 10,
                      entries_per_purchase=2, purchase_partners=("grocery",),
                      min_spend=Money(10_000, "UAH"))
    draw = create_draw(s.engine, s.rules, now, "grocery", terms, "test")
    member(gw, 1)
    member(gw, 2)
    earn(gw, "grocery", 100_000, "a-1", 1)
    earn(gw, "grocery", 5_000, "b-1", 2)
    with s.engine.connect() as conn:
        events = read_events(conn, limit=1000, types=sorted(DRAWS.types))
    for event in events:
        DRAWS.handle(s.engine, event)
    found = effectiveness(gw, "draw", draw.id, "grocery")
    assert (found.item.kind, found.members_reached, found.rewards, found.points_issued) == (
        "draw", 1, 2, 0)
    with pytest.raises(NotFound):
        effectiveness(gw, "draw", draw.id, "fuel")
