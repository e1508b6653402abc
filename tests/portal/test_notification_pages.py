"""The portal's Notifications page over ASGI on a real database: the signed-in member's feed
(from a real partner earn fed through the notifications consumer), linked from the nav, "mark
all read", emails on and off, the coalition-marketing consent on the Consents page, and a
second member who sees nothing of the first's."""

from __future__ import annotations

import re

from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.notifications.consumer import make_consumer
from gateway.outbox import read_events
from tests.portal.conftest import Browser, new_browser
from tests.portal.test_member_pages import linked_member


def drain(gateway: Gateway) -> None:
    handler = make_consumer(gateway.services.clock, lambda: gateway.services.ledger.tiers)
    with UnitOfWork(gateway.services.engine, write=False) as uow:
        events = read_events(uow.conn, limit=1000, types=sorted(handler.types))
    for event in events:
        handler.handle(gateway.services.engine, event)


async def test_the_feed_page_lists_marks_read_and_switches_email(
        browser: Browser, gateway: Gateway, clock: FixedClock) -> None:
    member_id = await linked_member(browser, gateway, clock)  # grocery earned 120 for them
    drain(gateway)
    home = await browser.get("/portal/")
    assert '<a href="/portal/notifications">Notifications</a>' in home.text
    page = await browser.get("/portal/notifications")
    assert page.status_code == 200
    assert '<p id="unread">1 unread</p>' in page.text
    assert "<strong>You earned 120 points at Kolos Grocery</strong>" in page.text
    assert "120 points from your purchase at Kolos Grocery are in your wallet." in page.text
    assert 'data-kind="points_earned"' in page.text and "(new)" in page.text
    read = await browser.submit("/portal/notifications", {"action": "read-all"})
    assert read.status_code == 303 and read.headers["location"] == "/portal/notifications?saved=1"
    page = await browser.get("/portal/notifications")
    assert '<p id="unread">0 unread</p>' in page.text and "(new)" not in page.text
    with gateway.services.engine.connect() as conn:
        assert conn.execute(select(t.notifications.c.read_at)
                            .where(t.notifications.c.member_id == member_id)
                            ).scalar_one() == clock.now()
    assert 'value="email-off"' in page.text
    off = await browser.submit("/portal/notifications", {"action": "email-off"})
    assert off.status_code == 303
    page = await browser.get("/portal/notifications")
    assert "Notification emails are off" in page.text and 'value="email-on"' in page.text
    consents = await browser.get("/portal/consents")
    assert "Offers and birthday greetings from the coalition" in consents.text
    assert 'name="purpose" value="coalition_marketing"' in consents.text
    given = await browser.submit("/portal/consents", {"purpose": "coalition_marketing",
                                                      "partner_id": "", "granted": "1"})
    assert given.status_code == 303
    with gateway.services.engine.connect() as conn:
        assert conn.execute(select(t.consents.c.purpose, t.consents.c.partner_id,
                                   t.consents.c.granted, t.consents.c.via)
                            .where(t.consents.c.member_id == member_id)).all() == [
            ("coalition_marketing", None, 1, "portal")]


async def test_another_member_sees_none_of_it_and_signed_out_goes_to_sign_in(
        browser: Browser, gateway: Gateway, clock: FixedClock) -> None:
    await linked_member(browser, gateway, clock)
    drain(gateway)
    async with new_browser(gateway) as client:
        other = Browser(client)
        signed_out = await other.get("/portal/notifications")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/portal/sign-in?next=")
        await other.sign_up("bob@example.com")
        page = await other.get("/portal/notifications")
        assert 'id="no-notifications"' in page.text and "Kolos Grocery" not in page.text
        assert re.search(r'<p id="unread">0 unread</p>', page.text)
