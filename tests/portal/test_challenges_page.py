"""The portal's challenges page on a real database: progress after a real earn whose event the
consumer handled, then the completion's badge."""

from __future__ import annotations

from datetime import timedelta

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from tests.portal.conftest import Browser
from tests.portal.test_member_pages import EARN, linked_member
from tests.support.challenges import Drain, define
from tests.support.harness import partner_api


async def test_challenges_page_shows_progress_and_badges(browser: Browser, gateway: Gateway,
                                                         clock: FixedClock) -> None:
    empty = await browser.get("/portal/challenges")
    assert empty.status_code == 303  # signed out: to sign in
    define(gateway, "grocery", id="two-visits", name="Two visits this month", badge="regular",
           bonus_points=40, window="month", count="purchases", target=2)
    drain = Drain(gateway, clock)
    await linked_member(browser, gateway, clock)  # grocery earns 120 for the member
    drain()
    page = (await browser.get("/portal/challenges")).text
    assert ('<li id="challenge-grocery-two-visits">' in page
            and '<span class="done">1 of 2</span>' in page)
    assert 'datetime="2026-12-01T00:00:00+00:00"' in page and 'id="no-badges"' in page
    grocery = await partner_api(gateway, "grocery")
    clock.advance(timedelta(minutes=1))
    await grocery.gql(EARN, {"c": "g-1", "amount": 10_000, "p": "g-p2"})
    drain()
    page = (await browser.get("/portal/challenges")).text
    assert '<span class="done">2 of 2</span> · <span class="completed">completed</span>' in page
    assert "<td>regular</td><td>1</td><td>2026-11-23</td>" in page
    wallet = (await browser.get("/portal/wallet")).text
    assert 'id="available">170<' in wallet  # 120 + 10 + the bonus of 40
