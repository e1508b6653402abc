"""The member's prize draws page over ASGI on a real database (decision 033): the open draw with
the member's entries and entrant id, entries bought once per form nonce (a reload buys
nothing more), a refusal over the limit changes nothing, and after close the seed, the winners
and what the member won."""

from __future__ import annotations

from datetime import timedelta

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.draws.service import EVERY, close_draw
from tests.portal.conftest import Browser
from tests.portal.test_member_pages import _CSRF, _NONCE, linked_member, post_form
from tests.support.draws import drain, grocery_draw
from tests.support.harness import ledger_snapshot


async def test_buy_entries_once_per_form_and_see_the_result(browser: Browser, gateway: Gateway,
                                                           clock: FixedClock) -> None:
    draw = grocery_draw(gateway, opens_at=clock.now())  # 10 points an entry, 5 per member
    await linked_member(browser, gateway, clock)  # 1,200.00 UAH at the grocery: 120 points
    drain(gateway)  # ... and 2 entries (the purchase was made after the draw opened)
    page = await browser.get("/portal/draws")
    assert page.status_code == 200
    assert 'id="available">120<' in page.text and 'class="my-entries">2<' in page.text
    assert draw.commitment in page.text
    token, nonce = _CSRF.search(page.text), _NONCE.search(page.text)
    assert token is not None and nonce is not None
    form = {"csrf": token.group(1), "nonce": nonce.group(1), "draw": draw.id, "entries": "3"}
    bought = await browser.client.post("/portal/draws", data=form)
    assert bought.status_code == 200 and "3 entries bought for 30 points" in bought.text
    assert 'id="available">90<' in bought.text and 'class="my-entries">5<' in bought.text
    again = await browser.client.post("/portal/draws", data=form)  # a reload of the POST
    assert again.status_code == 200 and 'id="available">90<' in again.text
    before = ledger_snapshot(gateway)
    _, over = await post_form(browser, "/portal/draws", {"draw": draw.id, "entries": "1"})
    assert over.status_code == 400 and "5 entries per member" in over.text
    _, nonsense = await post_form(browser, "/portal/draws", {"draw": draw.id, "entries": "x"})
    assert nonsense.status_code == 400
    assert ledger_snapshot(gateway) == before

    clock.advance(timedelta(days=7))
    closed = close_draw(gateway.services.engine, clock.now(), draw.id, EVERY)
    assert len(closed.winners) == 1  # one member, one prize each
    await browser.sign_in()  # the session outlived by a week
    page = await browser.get("/portal/draws")
    assert page.status_code == 200, page.text
    assert str(closed.draw.seed) in page.text
    assert "You won: Bike." in page.text and "<strong>(you)</strong>" in page.text
