"""Password reset through the portal's pages (decision 036), with a real SMTP server in process:
"forgot your password" sends a link to the account's email; the link, opened within 30
minutes, sets a new password, signs the member in, and signs out every other session; it works
once; an unknown email gets the same page and no email; a dead link says so. The member's app
tokens issued before the reset are refused from then on (here at once, on another worker within
the feed's bound), and codes approved before it are dead; a token issued after it works, even in
the reset's own second."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway, build
from gateway.auth.clients import CreatedClient
from gateway.auth.feed import REFRESH_S
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.settings import MailSettings
from tests.portal.conftest import EMAIL, PASSWORD, Browser, new_browser
from tests.portal.test_oauth_code_flow import APP_CB, approve, authorize_url, exchange, query
from tests.support import harness
from tests.support.smtp import Inbox, smtp_server

NEW_PASSWORD = "a much better passphrase"
SENT = "If an account signs in with that email, we have sent it a link"


@pytest.fixture
def inbox_port() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def gateway(tmp_path: Path, clock: FixedClock, inbox_port: tuple[Inbox, int]) -> Gateway:
    settings = harness.test_settings(
        tmp_path, mail=MailSettings(smtp_host="127.0.0.1", smtp_port=inbox_port[1]))
    gw = build(settings, clock=clock)
    harness.track(gw.services.engine)
    return gw


@pytest.fixture
async def signed_up(gateway: Gateway) -> AsyncIterator[Browser]:
    async with new_browser(gateway) as client:
        browser = Browser(client)
        await browser.sign_up()
        yield browser


def reset_path(inbox: Inbox) -> str:
    (message,) = inbox.to(EMAIL)
    assert message["Subject"] == "Reset your Coalition rewards password"
    body = message.get_payload(decode=True).decode()
    url = re.search(r"https://gateway\.test/portal/reset\?token=[A-Za-z0-9_-]{43}", body)
    assert url is not None, body
    parts = urlsplit(url.group(0))
    return f"{parts.path}?{parts.query}"


async def test_a_forgotten_password_is_reset_by_the_emailed_link(
        gateway: Gateway, signed_up: Browser, inbox_port: tuple[Inbox, int]) -> None:
    inbox = inbox_port[0]
    async with new_browser(gateway) as other:  # a second browser, signed in with the old one
        assert (await Browser(other).sign_in()).status_code == 303
        async with new_browser(gateway) as client:
            browser = Browser(client)
            sign_in_page = await browser.get("/portal/sign-in")
            assert 'href="/portal/forgot"' in sign_in_page.text
            asked = await browser.submit("/portal/forgot", {"email": " Ada@Example.com "})
            assert asked.status_code == 200 and SENT in asked.text
            path = reset_path(inbox)
            with gateway.services.engine.connect() as conn:
                stored = conn.execute(select(t.password_resets.c.token_hash)).scalar_one()
            assert stored not in path and len(stored) == 64  # only the token's hash is kept

            form = await browser.get(path)
            assert form.status_code == 200 and 'name="token"' in form.text
            assert form.headers["referrer-policy"] == "no-referrer"
            token = path.split("token=")[1]
            done = await browser.submit(path, {"token": token, "password": NEW_PASSWORD},
                                        action="/portal/reset")
            assert (done.status_code, done.headers["location"]) == (303, "/portal/")
            assert done.headers["set-cookie"].startswith("gw_session=")
            assert (await browser.get("/portal/")).status_code == 200
            # The account's email is told, without any link that works.
            told = inbox.to(EMAIL)[1:]
            assert [m["Subject"] for m in told] == ["Your Coalition rewards password changed"]
            told_body = told[0].get_payload(decode=True).decode()
            assert "token=" not in told_body and "/portal/forgot" in told_body

            # The link worked once; the other browser's session is gone; the old password too.
            again = await browser.get(path)
            assert again.status_code == 400 and "not valid any more" in again.text
            assert (await other.get("/portal/")).status_code == 303
        async with new_browser(gateway) as client:
            fresh = Browser(client)
            assert (await fresh.sign_in(password=PASSWORD)).status_code == 400
            assert (await fresh.sign_in(password=NEW_PASSWORD)).status_code == 303


async def test_an_unknown_email_gets_the_same_page_and_no_email(
        gateway: Gateway, signed_up: Browser, inbox_port: tuple[Inbox, int]) -> None:
    async with new_browser(gateway) as client:
        browser = Browser(client)
        asked = await browser.submit("/portal/forgot", {"email": "nobody@example.com"})
        assert asked.status_code == 200 and SENT in asked.text
        bad = await browser.submit("/portal/forgot", {"email": "not an email"})
        assert bad.status_code == 400 and "name@example.com" in bad.text
    assert inbox_port[0].messages == []
    with gateway.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.password_resets)).scalar_one() == 0


async def test_a_link_expires_after_30_minutes_and_a_newer_one_retires_nothing_early(
        gateway: Gateway, clock: FixedClock, signed_up: Browser,
        inbox_port: tuple[Inbox, int]) -> None:
    inbox = inbox_port[0]
    async with new_browser(gateway) as client:
        browser = Browser(client)
        await browser.submit("/portal/forgot", {"email": EMAIL})
        first = reset_path(inbox)
        inbox.messages.clear()
        clock.advance(timedelta(minutes=20))
        await browser.submit("/portal/forgot", {"email": EMAIL})
        second = reset_path(inbox)
        clock.advance(timedelta(minutes=11))  # the first is 31 minutes old, the second 11
        dead = await browser.get(first)
        assert dead.status_code == 400 and "not valid any more" in dead.text
        assert 'href="/portal/forgot"' in dead.text
        # A too-short password is refused beside its field; the link stays usable.
        token = second.split("token=")[1]
        short = await browser.submit(second, {"token": token, "password": "short"},
                                     action="/portal/reset")
        assert short.status_code == 400 and "at least 10 characters" in short.text
        done = await browser.submit(second, {"token": token, "password": NEW_PASSWORD},
                                    action="/portal/reset")
        assert done.status_code == 303
    with gateway.services.engine.connect() as conn:
        open_links = conn.execute(select(func.count()).select_from(t.password_resets).where(
            t.password_resets.c.used_at.is_(None))).scalar_one()
    assert open_links == 0  # the expired first link was retired with the use of the second


async def test_an_email_with_a_control_character_is_refused_beside_its_field(
        gateway: Gateway, signed_up: Browser, inbox_port: tuple[Inbox, int]) -> None:
    # PostgreSQL refuses a NUL in a text parameter: it reached the lookup and answered 500.
    async with new_browser(gateway) as client:
        browser = Browser(client)
        for email in ("ada\x00@example.com", "ada@example.com\x00", "a\x1bda@example.com"):
            asked = await browser.submit("/portal/forgot", {"email": email})
            assert asked.status_code == 400 and "name@example.com" in asked.text
            signed_in = await browser.sign_in(email=email)
            assert signed_in.status_code == 400
    assert inbox_port[0].messages == []


# --- The member's app tokens (decision 036): cut off by the reset, to the microsecond ---------

VIEWER = "{ viewer { __typename ... on Viewer { cardNumber } } }"
CUT_OFF = "the token was issued before the member's password was reset: sign in again"


async def app_token(gateway: Gateway, browser: Browser, client: CreatedClient) -> str:
    """A member token for the app, through the real code flow in this signed-in browser."""
    code, verifier = await app_code(browser, client)
    response = await exchange(gateway, client, code, verifier, APP_CB)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def app_code(browser: Browser, client: CreatedClient) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(client.client.client_id, APP_CB, verifier))
    return query(callback)["code"], verifier


async def viewer(gateway: Gateway, token: str) -> httpx.Response:
    async with new_browser(gateway) as client:
        return await client.post("/graphql", json={"query": VIEWER},
                                 headers={"Authorization": f"Bearer {token}"})


def assert_cut_off(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"errors": [{"message": CUT_OFF,
                                           "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def reset_through_the_portal(gateway: Gateway, inbox: Inbox) -> None:
    async with new_browser(gateway) as client:
        browser = Browser(client)
        await browser.submit("/portal/forgot", {"email": EMAIL})
        path = reset_path(inbox)
        done = await browser.submit(path, {"token": path.split("token=")[1],
                                           "password": NEW_PASSWORD}, action="/portal/reset")
        assert done.status_code == 303, done.text


def claims(gateway: Gateway, token: str) -> dict[str, Any]:
    return gateway.auth.tokens.decode(token)


async def test_a_reset_refuses_the_app_tokens_issued_before_it_even_in_its_second(
        gateway: Gateway, clock: FixedClock, signed_up: Browser,
        inbox_port: tuple[Inbox, int]) -> None:
    app = gateway.auth.clients.create(name="Coalition app", kind="app", redirect_uris=[APP_CB],
                                      actor="test")
    assert clock.now().microsecond == 0
    clock.advance(timedelta(milliseconds=200))
    old = await app_token(gateway, signed_up, app)
    pending = await app_code(signed_up, app)  # approved before the reset, exchanged after
    card = (await viewer(gateway, old)).json()["data"]["viewer"]["cardNumber"]
    assert len(card) == 16  # the token works (and is now verified and remembered in memory)

    clock.advance(timedelta(milliseconds=300))  # the reset at .500 of the same second
    await reset_through_the_portal(gateway, inbox_port[0])

    assert_cut_off(await viewer(gateway, old))  # at once, in this process
    assert_cut_off(await viewer(gateway, old))  # and from the in-memory path as well
    assert not gateway.auth.tokens.is_active(claims(gateway, old))
    refused = await exchange(gateway, app, *pending, APP_CB)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    clock.advance(timedelta(milliseconds=200))  # .700: the reset's second, after it
    async with new_browser(gateway) as client:
        again = Browser(client)
        assert (await again.sign_in(password=NEW_PASSWORD)).status_code == 303
        new = await app_token(gateway, again, app)
    assert claims(gateway, new)["iat"] == claims(gateway, old)["iat"]  # one second, both
    assert claims(gateway, new)["iat_us"] - claims(gateway, old)["iat_us"] == 500_000
    answered = await viewer(gateway, new)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"data": {"viewer": {"__typename": "Viewer", "cardNumber": card}}}


async def test_another_worker_refuses_the_old_app_token_within_the_feed_bound(
        gateway: Gateway, clock: FixedClock, signed_up: Browser,
        inbox_port: tuple[Inbox, int]) -> None:
    # A second gateway on the same database stands for another worker process.
    other = build(gateway.services.settings, clock=clock, prepared=True)
    harness.track(other.services.engine)
    app = gateway.auth.clients.create(name="Coalition app", kind="app", redirect_uris=[APP_CB],
                                      actor="test")
    clock.advance(timedelta(milliseconds=200))
    old = await app_token(gateway, signed_up, app)
    assert (await viewer(other, old)).status_code == 200
    clock.advance(timedelta(milliseconds=300))
    await reset_through_the_portal(gateway, inbox_port[0])
    started = time.monotonic()
    while (answered := await viewer(other, old)).status_code == 200:
        elapsed = time.monotonic() - started
        assert elapsed < REFRESH_S + 2.0, f"still accepted {elapsed:.2f} s after the reset"
        time.sleep(0.02)
    assert_cut_off(answered)
