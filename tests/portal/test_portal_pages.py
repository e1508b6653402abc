"""The portal's pages over ASGI: sign up, sign in, home, claim, sign out; every response's
security headers; CSRF refusals that change nothing; the session cookie's flags."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from tests.portal.conftest import BASE, EMAIL, PASSWORD, Browser, new_browser
from tests.support import harness

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def counts(gateway: Gateway) -> dict[str, int]:
    with gateway.services.engine.connect() as conn:
        found = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                 for table in (t.members, t.member_credentials, t.member_sessions)}
        found["accounts"] = conn.execute(select(func.count()).select_from(t.accounts)
                                         .where(t.accounts.c.member_id.is_not(None))).scalar_one()
        return found


def assert_secure_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_pages_render_with_security_headers(browser: Browser) -> None:
    for path in ("/portal/sign-in", "/portal/sign-up", "/portal/claim", "/portal/sign-out"):
        response = await browser.get(path)
        assert response.status_code == 200, path
        assert_secure_headers(response)
        assert '<label for="email">' in response.text or path == "/portal/sign-out"
    home = await browser.get("/portal/")
    assert home.status_code == 303
    assert home.headers["location"] == "/portal/sign-in?next=%2Fportal%2F"
    assert_secure_headers(home)


async def test_sign_up_signs_in_and_home_shows_card_and_balance(browser: Browser,
                                                                gateway: Gateway) -> None:
    response = await browser.sign_up()
    assert response.headers["location"] == "/portal/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("gw_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # not production settings
    home = await browser.get("/portal/")
    assert home.status_code == 200
    with gateway.services.engine.connect() as conn:
        card, email = conn.execute(select(t.members.c.card_number, t.member_credentials.c.email)
                                   .join(t.member_credentials)).one()
    assert email == EMAIL
    shown = re.search(r'id="card-number">([0-9 ]+)<', home.text)
    assert shown is not None and shown.group(1).replace(" ", "") == card
    assert 'id="available">0<' in home.text
    assert counts(gateway) == {"members": 1, "member_credentials": 1, "member_sessions": 1,
                               "accounts": 4}


async def test_session_cookie_is_secure_in_production(tmp_path: Path) -> None:
    gateway = harness.make_gateway(tmp_path, production=True)
    async with new_browser(gateway) as client:
        response = await Browser(client).sign_up()
    assert "Secure" in response.headers["set-cookie"]


async def test_forms_without_csrf_are_refused_and_change_nothing(browser: Browser,
                                                                 gateway: Gateway) -> None:
    await browser.get("/portal/sign-up")  # has the nonce cookie, but posts no token
    before = counts(gateway)
    for path in ("/portal/sign-up", "/portal/sign-in", "/portal/claim", "/portal/sign-out"):
        response = await browser.client.post(path, data={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 403, path
        assert_secure_headers(response)
        wrong = await browser.client.post(path, data={"csrf": "0" * 64, "email": EMAIL,
                                                      "password": PASSWORD})
        assert wrong.status_code == 403, path
    async with new_browser(gateway) as fresh:  # no nonce cookie at all
        response = await fresh.post("/portal/sign-up", data={"email": EMAIL,
                                                             "password": PASSWORD})
        assert response.status_code == 403
    assert counts(gateway) == before


async def test_sign_up_errors_name_the_field_and_change_nothing(browser: Browser,
                                                                gateway: Gateway) -> None:
    before = counts(gateway)
    cases = [({"email": "nope", "password": PASSWORD}, "enter an email address"),
             ({"email": EMAIL, "password": "short"}, "at least 10 characters"),
             ({"email": EMAIL, "password": "x" * 1025}, "at most 1024 characters"),
             ({"email": EMAIL, "password": PASSWORD, "birth_date": "1990-13-01"},
              "YYYY-MM-DD")]
    for data, message in cases:
        response = await browser.submit("/portal/sign-up", data)
        assert response.status_code == 400
        assert message in response.text
        assert 'aria-invalid="true"' in response.text
    assert counts(gateway) == before
    await browser.sign_up()
    async with new_browser(gateway) as other:
        taken = await Browser(other).submit("/portal/sign-up",
                                            {"email": " ADA@example.com ", "password": PASSWORD})
    assert taken.status_code == 400
    assert "an account with this email exists" in taken.text
    assert counts(gateway)["member_credentials"] == 1


async def test_sign_out_revokes_the_session(browser: Browser, gateway: Gateway) -> None:
    await browser.sign_up()
    token = browser.client.cookies["gw_session"]
    response = await browser.submit("/portal/sign-out", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/sign-in"
    with gateway.services.engine.connect() as conn:
        revoked = conn.execute(select(t.member_sessions.c.revoked_at)).scalar_one()
    assert revoked == harness.NOW
    async with new_browser(gateway) as thief:  # the old cookie value no longer signs in
        thief.cookies.set("gw_session", token)
        assert (await thief.get("/portal/")).status_code == 303


async def test_sign_in_and_wrong_password(browser: Browser, gateway: Gateway) -> None:
    await browser.sign_up()
    async with new_browser(gateway) as client:
        other = Browser(client)
        wrong = await other.sign_in(password="not the password")
        assert wrong.status_code == 400
        assert "the email or password is wrong" in wrong.text
        unknown = await other.sign_in(email="bob@example.com")
        assert unknown.status_code == 400
        assert "the email or password is wrong" in unknown.text
        ok = await other.sign_in(email=" Ada@Example.com")
        assert ok.status_code == 303 and ok.headers["location"] == "/portal/"
        assert (await other.get("/portal/")).status_code == 200


async def test_sign_in_returns_to_a_local_next_only(browser: Browser, gateway: Gateway) -> None:
    await browser.sign_up()
    async with new_browser(gateway) as client:
        other = Browser(client)
        for target, expected in (("/oauth/authorize?x=1", "/oauth/authorize?x=1"),
                                 ("https://evil.test/", "/portal/"),
                                 ("//evil.test/", "/portal/")):
            response = await other.submit("/portal/sign-in", {"email": EMAIL,
                                                              "password": PASSWORD,
                                                              "next": target})
            assert response.headers["location"] == expected


async def test_claim_a_till_card(browser: Browser, gateway: Gateway) -> None:
    services = gateway.services
    enrolled = enrol_customer(services.engine, services.clock, "grocery", "c-1")
    assert enrolled.card_number is not None and enrolled.activation_code is not None
    data = {"card_number": enrolled.card_number, "activation_code": "AAAAAAAAAA",
            "email": EMAIL, "password": PASSWORD}
    before = counts(gateway)
    wrong = await browser.submit("/portal/claim", data)
    assert wrong.status_code == 400
    assert "do not match an unclaimed card" in wrong.text
    assert counts(gateway) == before
    data["activation_code"] = enrolled.activation_code.lower()
    response = await browser.submit("/portal/claim", data)
    assert response.status_code == 303
    with services.engine.connect() as conn:
        row = conn.execute(select(t.members.c.activation_code_hash, t.members.c.claimed_at)
                           .where(t.members.c.id == enrolled.member_id)).one()
    assert tuple(row) == (None, harness.NOW)
    async with new_browser(gateway) as client:  # the code is single use
        again = await Browser(client).submit("/portal/claim", {**data, "email": "x@example.com"})
    assert again.status_code == 400
    home = await browser.get("/portal/")
    assert enrolled.card_number[:4] in home.text
    assert BASE  # same origin throughout


async def test_sign_in_page_answers_429_when_the_account_is_limited(
        browser: Browser, gateway: Gateway) -> None:
    await browser.sign_up()
    async with new_browser(gateway) as client:
        other = Browser(client)
        for _ in range(5):
            assert (await other.sign_in(password="wrong password")).status_code == 400
        limited = await other.sign_in()
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 30
        assert "rate limit reached" in limited.text
        assert "gw_session" not in client.cookies
