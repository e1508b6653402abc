"""The member's own portal pages over ASGI on a real database: wallet, history, brands (unlink),
consents (via "portal"), link code (a partner links with it), store code (QR as SVG, digits,
refresh), donate (once per form nonce), merge (card + activation code), export (JSON download)
and delete (confirmation, erasure, signed out). Rejections change nothing."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger import enrolment
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.verify import verify_ledger
from tests.portal.conftest import EMAIL, PASSWORD, Browser
from tests.support.harness import ledger_snapshot, partner_api
from tests.support.members import LINK, give_activation_code

EARN = """mutation($c: ID!, $amount: MinorUnits!, $p: String!) { earnPoints(input: {
  customerId: $c, amount: {amountMinor: $amount, currency: "UAH"}, channel: STORE,
  purchaseId: $p, idempotencyKey: $p}) { __typename ... on EarnPointsSuccess { points } } }"""
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


def member_of(gateway: Gateway) -> str:
    with gateway.services.engine.connect() as conn:
        return str(conn.execute(select(t.member_credentials.c.member_id)
                                .where(t.member_credentials.c.email == EMAIL)).scalar_one())


async def post_form(browser: Browser, page_url: str,
                    data: dict[str, str]) -> tuple[str, httpx.Response]:
    """GET the page, POST its form with its CSRF token and nonce; (page text, response)."""
    page = await browser.get(page_url)
    token, nonce = _CSRF.search(page.text), _NONCE.search(page.text)
    assert token is not None, page.text
    form = {"csrf": token.group(1), **({"nonce": nonce.group(1)} if nonce else {}), **data}
    return page.text, await browser.client.post(page_url, data=form)


async def linked_member(browser: Browser, gateway: Gateway, clock: FixedClock) -> str:
    """Sign up, make a link code in the portal, grocery links g-1 with it and earns 120."""
    await browser.sign_up()
    made = await browser.submit("/portal/link-code", {})
    assert made.status_code == 200
    code = re.search(r'id="link-code" aria-label="Link code">([A-Z0-9]{8})<', made.text)
    assert code is not None, made.text
    assert 'id="link-code-expiry" datetime="2026-11-23T10:10:00+00:00"' in made.text
    grocery = await partner_api(gateway, "grocery")
    linked = await grocery.gql(LINK, {"c": "g-1", "code": code.group(1)})
    assert linked["linkCustomer"]["__typename"] == "LinkCustomerSuccess"
    earned = await grocery.gql(EARN, {"c": "g-1", "amount": 120000, "p": "g-p1"})
    assert earned["earnPoints"] == {"__typename": "EarnPointsSuccess", "points": 120}
    clock.advance(timedelta(minutes=1))
    return member_of(gateway)


async def test_wallet_history_brands_and_unlink(browser: Browser, gateway: Gateway,
                                                clock: FixedClock) -> None:
    await linked_member(browser, gateway, clock)
    wallet = await browser.get("/portal/wallet")
    assert wallet.status_code == 200
    for name, value in (("available", 120), ("held", 0), ("debt", 0), ("pending", 0)):
        assert f'id="{name}">{value}<' in wallet.text
    assert 'id="no-pending"' in wallet.text and 'id="no-expiring"' in wallet.text
    history = await browser.get("/portal/history")
    assert "<strong>Kolos Grocery</strong> · earn · store" in history.text
    assert '<span class="points">+120</span>' in history.text
    assert 'class="why"' in history.text and 'id="older"' not in history.text
    bad_cursor = await browser.get("/portal/history?after=nonsense")
    assert bad_cursor.status_code == 200 and "+120" in bad_cursor.text
    brands = await browser.get("/portal/brands")
    assert "<strong>Kolos Grocery</strong>" in brands.text and "by link_code" in brands.text
    before = ledger_snapshot(gateway)
    _, wrong = await post_form(browser, "/portal/brands", {"partner_id": "fuel"})
    assert wrong.status_code == 400
    assert ledger_snapshot(gateway) == before
    _, unlinked = await post_form(browser, "/portal/brands", {"partner_id": "grocery"})
    assert unlinked.status_code == 303
    after = await browser.get("/portal/brands?unlinked=1")
    assert 'id="no-brands"' in after.text and "Your points stay" in after.text
    assert 'id="available">120<' in (await browser.get("/portal/wallet")).text


async def test_wallet_shows_the_tier(browser: Browser, gateway: Gateway,
                                     clock: FixedClock) -> None:
    """120 qualifying points (the earn's base): Silver, 4,880 more to Gold, no end date; then
    4,880 more at grocery: Gold, held until the start of November 2027 (the window's end)."""
    await linked_member(browser, gateway, clock)
    wallet = (await browser.get("/portal/wallet")).text
    for name, value in (("tier-name", "Silver"), ("tier-points", "120"),
                        ("tier-to-next", "4880 more qualifying points")):
        assert f'id="{name}">{value}<' in wallet
    assert 'id="tier-until"' not in wallet
    grocery = await partner_api(gateway, "grocery")
    earned = await grocery.gql(EARN, {"c": "g-1", "amount": 4_880_000, "p": "g-p2"})
    assert earned["earnPoints"] == {"__typename": "EarnPointsSuccess", "points": 4880}
    wallet = (await browser.get("/portal/wallet")).text
    for name, value in (("tier-name", "Gold"), ("tier-points", "5000"),
                        ("tier-to-next", "15000 more qualifying points"),
                        ("tier-until", "2027-11-01 unless you earn more")):
        assert f'id="{name}">{value}<' in wallet


async def test_consents_are_recorded_via_portal(browser: Browser, gateway: Gateway,
                                                clock: FixedClock) -> None:
    member = await linked_member(browser, gateway, clock)
    page = await browser.get("/portal/consents")
    # purchase history, the coalition's own marketing, marketing from Kolos Grocery
    assert page.text.count("Not given") == 3
    _, given = await post_form(browser, "/portal/consents", {
        "purpose": "marketing", "partner_id": "grocery", "granted": "1"})
    assert given.status_code == 303
    _, bad = await post_form(browser, "/portal/consents", {
        "purpose": "marketing", "partner_id": "", "granted": "1"})
    assert bad.status_code == 400
    _, withdrawn = await post_form(browser, "/portal/consents", {
        "purpose": "marketing", "partner_id": "grocery", "granted": "0"})
    assert withdrawn.status_code == 303
    with gateway.services.engine.connect() as conn:
        rows = conn.execute(select(t.consents.c.purpose, t.consents.c.partner_id,
                                   t.consents.c.granted, t.consents.c.via)
                            .where(t.consents.c.member_id == member,
                                   t.consents.c.via == "portal")
                            .order_by(t.consents.c.id)).all()
    assert [tuple(r) for r in rows] == [("marketing", "grocery", 1, "portal"),
                                        ("marketing", "grocery", 0, "portal")]
    assert "Withdrawn 2026-11-23 10:01 UTC via portal" in (
        await browser.get("/portal/consents")).text


async def test_store_code_shows_qr_digits_and_refreshes(browser: Browser,
                                                        gateway: Gateway) -> None:
    await browser.sign_up()
    page = await browser.get("/portal/store-code")
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="50">' in page.text
    assert re.search(r'<div class="qr" id="store-qr"><svg [^>]*class="segno">', page.text)
    digits = re.search(r'id="store-digits" aria-label="Store code digits">(\d{4} \d{4} \d{4})<',
                       page.text)
    assert digits is not None
    assert 'datetime="2026-11-23T10:01:00+00:00"' in page.text
    again = await browser.get("/portal/store-code")
    assert digits.group(1) not in again.text  # a fresh code on every load


async def test_donate_once_per_form_then_refuses_too_many(browser: Browser, gateway: Gateway,
                                                          clock: FixedClock) -> None:
    await linked_member(browser, gateway, clock)
    page = await browser.get("/portal/donate")
    assert 'id="available">120<' in page.text and '<option value="charity">Dobro Fund' in page.text
    token, nonce = _CSRF.search(page.text), _NONCE.search(page.text)
    assert token is not None and nonce is not None
    form = {"csrf": token.group(1), "nonce": nonce.group(1), "charity": "charity",
            "points": "20"}
    first = await browser.client.post("/portal/donate", data=form)
    assert first.status_code == 200 and "20 points donated" in first.text
    assert 'id="available">100<' in first.text
    replay = await browser.client.post("/portal/donate", data=form)  # a reload of the POST
    assert replay.status_code == 200 and 'id="available">100<' in replay.text
    before = ledger_snapshot(gateway)
    _, too_many = await post_form(browser, "/portal/donate", {"charity": "charity",
                                                              "points": "101"})
    assert too_many.status_code == 400
    _, not_charity = await post_form(browser, "/portal/donate", {"charity": "grocery",
                                                                 "points": "1"})
    assert not_charity.status_code == 400
    _, not_number = await post_form(browser, "/portal/donate", {"charity": "charity",
                                                                "points": "ten"})
    assert not_number.status_code == 400
    assert ledger_snapshot(gateway) == before
    assert verify_ledger(gateway.services.engine).ok


async def test_merge_with_card_and_activation_code(browser: Browser, gateway: Gateway,
                                                   clock: FixedClock) -> None:
    survivor = await linked_member(browser, gateway, clock)
    other = enrol_customer(gateway.services.engine, clock, "fuel", "f-1")
    card = other.card_number
    assert card is not None and other.member_id != survivor
    code = give_activation_code(gateway, other.member_id)
    before = ledger_snapshot(gateway)
    _, wrong = await post_form(browser, "/portal/merge", {
        "method": "card", "card_number": card, "activation_code": "WRONG123"})
    assert wrong.status_code == 400
    assert ledger_snapshot(gateway) == before
    _, merged = await post_form(browser, "/portal/merge", {
        "method": "card", "card_number": card, "activation_code": code})
    assert merged.status_code == 200, merged.text
    assert "1 brands moved" in merged.text
    with gateway.services.engine.connect() as conn:
        into = conn.execute(select(t.members.c.merged_into)
                            .where(t.members.c.id == other.member_id)).scalar_one()
    assert into == survivor
    assert "Shlyakh Fuel" in (await browser.get("/portal/brands")).text
    assert verify_ledger(gateway.services.engine).ok


async def test_export_downloads_json(browser: Browser, gateway: Gateway,
                                     clock: FixedClock) -> None:
    await linked_member(browser, gateway, clock)
    _, response = await post_form(browser, "/portal/export", {})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="coalition-my-data.json"')
    data = json.loads(response.text)
    assert EMAIL in json.dumps(data)


async def test_delete_confirms_erases_and_signs_out(browser: Browser, gateway: Gateway,
                                                    clock: FixedClock) -> None:
    member = await linked_member(browser, gateway, clock)
    _, asked = await post_form(browser, "/portal/delete", {"remaining": "DONATE",
                                                           "charity": "charity"})
    assert asked.status_code == 200
    assert "donated to <strong>Dobro Fund</strong>" in asked.text
    with gateway.services.engine.connect() as conn:
        status = conn.execute(select(t.members.c.status)
                              .where(t.members.c.id == member)).scalar_one()
    assert status == "active"  # nothing happens before the confirmation
    token = _CSRF.search(asked.text)
    assert token is not None
    done = await browser.client.post("/portal/delete", data={
        "csrf": token.group(1), "remaining": "DONATE", "charity": "charity", "confirm": "yes"})
    assert done.status_code == 200 and 'id="deleted"' in done.text
    assert 'gw_session=""' in done.headers["set-cookie"]
    with gateway.services.engine.connect() as conn:
        status = conn.execute(select(t.members.c.status)
                              .where(t.members.c.id == member)).scalar_one()
    assert status == "erased"
    assert (await browser.get("/portal/wallet")).status_code == 303
    assert verify_ledger(gateway.services.engine).ok


async def test_merge_with_the_other_accounts_sign_in(browser: Browser, gateway: Gateway,
                                                     clock: FixedClock) -> None:
    survivor = await linked_member(browser, gateway, clock)
    other = enrolment.sign_up(gateway.services.engine, clock, "second@example.com",
                                "another good password")
    before = ledger_snapshot(gateway)
    _, wrong = await post_form(browser, "/portal/merge", {
        "method": "sign_in", "email": "second@example.com", "password": "not the password"})
    assert wrong.status_code == 400 and "no account with this email and password" in wrong.text
    _, itself = await post_form(browser, "/portal/merge", {
        "method": "sign_in", "email": EMAIL, "password": PASSWORD})
    assert itself.status_code == 400 and "cannot be merged into itself" in itself.text
    assert ledger_snapshot(gateway) == before
    _, merged = await post_form(browser, "/portal/merge", {
        "method": "sign_in", "email": "second@example.com", "password": "another good password"})
    assert merged.status_code == 200 and 'id="notice"' in merged.text, merged.text
    with gateway.services.engine.connect() as conn:
        into = conn.execute(select(t.members.c.merged_into)
                            .where(t.members.c.id == other.member_id)).scalar_one()
    assert into == survivor
    assert verify_ledger(gateway.services.engine).ok


async def test_history_pages_twenty_at_a_time(browser: Browser, gateway: Gateway,
                                              clock: FixedClock) -> None:
    await linked_member(browser, gateway, clock)
    grocery = await partner_api(gateway, "grocery")
    for n in range(20):
        earned = await grocery.gql(EARN, {"c": "g-1", "amount": 1000, "p": f"g-more-{n}"})
        assert earned["earnPoints"]["__typename"] == "EarnPointsSuccess"
    first = await browser.get("/portal/history")
    assert first.text.count('<span class="points">') == 20
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older is not None and "+120" not in first.text
    second = await browser.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count('<span class="points">') == 1 and "+120" in second.text
    assert 'id="older"' not in second.text
