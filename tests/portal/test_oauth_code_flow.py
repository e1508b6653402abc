"""The authorization code flow with PKCE, end to end over ASGI: a stock authlib client for a
partner, a public app client, and each refusal as RFC 6749 §4.1.2.1/§5.2 and RFC 7636 §4.4.1
say. The member's browser steps are httpx with the portal session cookie."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select

from gateway.app import Gateway
from gateway.auth.clients import CreatedClient
from gateway.auth.tokens import InvalidToken
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.members.identity import PAIRWISE_SECRET, IdentityRepository, member_reference
from tests.portal.conftest import BASE, EMAIL, PASSWORD, Browser, new_browser

GROCERY_CB = "https://grocery.test/callback"
APP_CB = "http://127.0.0.1:8765/callback"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture
def grocery(gateway: Gateway) -> CreatedClient:
    return gateway.auth.clients.create(name="Grocery web shop", kind="partner",
                                       partner_id="grocery", redirect_uris=[GROCERY_CB],
                                       actor="test")


@pytest.fixture
def app_client(gateway: Gateway) -> CreatedClient:
    return gateway.auth.clients.create(name="Coalition app", kind="app",
                                       redirect_uris=[APP_CB], actor="test")


@pytest.fixture
async def member(browser: Browser, gateway: Gateway) -> str:
    await browser.sign_up()
    with gateway.services.engine.connect() as conn:
        return str(conn.execute(select(t.member_credentials.c.member_id)).scalar_one())


def authorize_url(client_id: str, redirect_uri: str, verifier: str, **extra: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "state": "st-1", "code_challenge": create_s256_code_challenge(verifier),
              "code_challenge_method": "S256", **extra}
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v != "-"})


async def approve(browser: Browser, url: str, decision: str = "approve") -> str:
    page = await browser.get(url)
    assert page.status_code == 200, page.text
    token = _CSRF.search(page.text)
    assert token is not None
    response = await browser.client.post(url, data={"csrf": token.group(1),
                                                    "decision": decision})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def token_request(gateway: Gateway, data: dict[str, str],
                        auth: tuple[str, str] | None = None) -> httpx.Response:
    async with new_browser(gateway) as client:
        return await client.post("/oauth/token", data=data, auth=auth)


async def exchange(gateway: Gateway, client: CreatedClient, code: str, verifier: str,
                   redirect_uri: str = GROCERY_CB) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    if client.secret:
        return await token_request(gateway, data, (client.client.client_id, client.secret))
    return await token_request(gateway, {**data, "client_id": client.client.client_id})


def links(gateway: Gateway) -> list[tuple[Any, ...]]:
    with gateway.services.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(t.linked_accounts.c.partner_id, t.linked_accounts.c.customer_id,
                   t.linked_accounts.c.member_id, t.linked_accounts.c.consent_via))]


def reference(gateway: Gateway, member_id: str) -> str:
    with gateway.services.engine.begin() as conn:
        secret = IdentityRepository(conn).secret(PAIRWISE_SECRET, gateway.services.clock.now())
    return member_reference(secret, "grocery", member_id)


async def test_stock_authlib_client_links_a_partner_customer(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str) -> None:
    transport = httpx.ASGITransport(app=gateway.app)
    async with AsyncOAuth2Client(grocery.client.client_id, grocery.secret,
                                 redirect_uri=GROCERY_CB, scope="points:earn members:read",
                                 code_challenge_method="S256", transport=transport) as oauth:
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(BASE + "/oauth/authorize",
                                                    code_verifier=verifier, customer_id="g-42")
        consent = await browser.get(url)
        assert "Grocery web shop" in consent.text and "g-42" in consent.text
        assert "Award points to a member for a purchase" in consent.text
        assert consent.headers["content-security-policy"].count("https://grocery.test") == 1
        callback = await approve(browser, url)
        assert callback.startswith(GROCERY_CB + "?code=")
        assert query(callback)["state"] == state
        token = await oauth.fetch_token(BASE + "/oauth/token", authorization_response=callback,
                                        code_verifier=verifier)
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "points:earn members:read"
    assert token["customer_id"] == "g-42"
    assert token["member_reference"] == reference(gateway, member)
    assert token["expires_in"] == 600
    principal = gateway.auth.tokens.verify(token["access_token"])
    assert (principal.kind, principal.partner_id, principal.member_id) == (
        "partner", "grocery", None)
    assert links(gateway) == [("grocery", "g-42", member, "oauth")]
    with gateway.services.engine.connect() as conn:
        event = conn.execute(select(t.link_events.c.action, t.link_events.c.via,
                                    t.link_events.c.actor)).one()
    assert tuple(event) == ("linked", "oauth", f"client:{grocery.client.client_id}")


async def test_app_client_gets_a_member_token(gateway: Gateway, browser: Browser,
                                              app_client: CreatedClient, member: str) -> None:
    assert app_client.secret == ""
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(app_client.client.client_id, APP_CB,
                                                    verifier))
    response = await exchange(gateway, app_client, query(callback)["code"], verifier, APP_CB)
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body) == ["access_token", "expires_in", "scope", "token_type"]
    assert body["scope"] == "member"
    principal = gateway.auth.tokens.verify(body["access_token"])
    assert (principal.kind, principal.member_id, principal.partner_id) == ("member", member,
                                                                           None)
    assert links(gateway) == []
    creds = await token_request(gateway, {"grant_type": "client_credentials",
                                          "client_id": app_client.client.client_id})
    assert creds.status_code == 401  # a public client has no client-credentials grant


async def test_code_verifier_missing_or_wrong(gateway: Gateway, browser: Browser,
                                              grocery: CreatedClient, member: str) -> None:
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(grocery.client.client_id, GROCERY_CB,
                                                    verifier, customer_id="g-1"))
    code = query(callback)["code"]
    missing = await token_request(
        gateway, {"grant_type": "authorization_code", "code": code, "redirect_uri": GROCERY_CB},
        (grocery.client.client_id, grocery.secret))
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    wrong = await exchange(gateway, grocery, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "Code challenge failed."}
    assert links(gateway) == []
    ok = await exchange(gateway, grocery, code, verifier)  # refusals did not use the code up
    assert ok.status_code == 200


@pytest.mark.parametrize("extra", [{"code_challenge_method": "plain"},
                                   {"code_challenge_method": "-"},
                                   {"code_challenge": "-", "code_challenge_method": "-"}])
async def test_plain_or_missing_pkce_is_refused_at_the_redirect(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str,
        extra: dict[str, str]) -> None:
    url = authorize_url(grocery.client.client_id, GROCERY_CB, secrets.token_urlsafe(48),
                        customer_id="g-1", **extra)
    response = await browser.get(url)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(GROCERY_CB + "?")
    params = query(location)
    assert params["error"] == "invalid_request" and params["state"] == "st-1"
    assert "code" not in params


async def test_reused_code_is_refused_and_revokes_its_token(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str) -> None:
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(grocery.client.client_id, GROCERY_CB,
                                                    verifier, customer_id="g-1"))
    first = await exchange(gateway, grocery, query(callback)["code"], verifier)
    assert first.status_code == 200
    token = first.json()["access_token"]
    assert gateway.auth.tokens.verify(token).partner_id == "grocery"
    second = await exchange(gateway, grocery, query(callback)["code"], verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    with pytest.raises(InvalidToken, match="revoked"):
        gateway.auth.tokens.verify(token)
    assert links(gateway) == [("grocery", "g-1", member, "oauth")]


async def test_unregistered_redirect_uri_gets_an_error_page(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str) -> None:
    for uri in ("https://evil.test/callback", GROCERY_CB + "/", GROCERY_CB + "?x=1", "-"):
        response = await browser.get(authorize_url(grocery.client.client_id, uri,
                                                   secrets.token_urlsafe(48), customer_id="g"))
        assert response.status_code == 400, uri
        assert "location" not in response.headers
        assert "This sign-in link is not valid" in response.text
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_unknown_client(gateway: Gateway, browser: Browser, member: str) -> None:
    response = await browser.get(authorize_url("cli_nobody", GROCERY_CB, "v" * 43))
    assert response.status_code == 400
    assert "location" not in response.headers
    token = await token_request(gateway, {"grant_type": "authorization_code", "code": "x",
                                          "redirect_uri": GROCERY_CB, "code_verifier": "v" * 43},
                                ("cli_nobody", "secret"))
    assert token.status_code == 401
    assert token.json()["error"] == "invalid_client"


async def test_missing_state_or_customer_is_refused_at_the_redirect(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str) -> None:
    no_state = await browser.get(authorize_url(grocery.client.client_id, GROCERY_CB,
                                               "v" * 43, state="-", customer_id="g"))
    assert no_state.status_code == 303
    assert query(no_state.headers["location"]) == {"error": "invalid_request",
                                                   "error_description": "state is required"}
    no_customer = await browser.get(authorize_url(grocery.client.client_id, GROCERY_CB,
                                                  "v" * 43))
    assert query(no_customer.headers["location"])["error"] == "invalid_request"
    bad_type = await browser.get(authorize_url(grocery.client.client_id, GROCERY_CB, "v" * 43,
                                               response_type="token", customer_id="g"))
    assert query(bad_type.headers["location"])["error"] == "unsupported_response_type"


async def test_expired_code(gateway: Gateway, browser: Browser, grocery: CreatedClient,
                            member: str, clock: FixedClock) -> None:
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(grocery.client.client_id, GROCERY_CB,
                                                    verifier, customer_id="g-1"))
    clock.advance(timedelta(seconds=60))
    response = await exchange(gateway, grocery, query(callback)["code"], verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert links(gateway) == []


async def test_code_of_another_client(gateway: Gateway, browser: Browser,
                                      grocery: CreatedClient, member: str) -> None:
    fuel = gateway.auth.clients.create(name="Fuel", kind="partner", partner_id="fuel",
                                       redirect_uris=[GROCERY_CB], actor="test")
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(grocery.client.client_id, GROCERY_CB,
                                                    verifier, customer_id="g-1"))
    response = await exchange(gateway, fuel, query(callback)["code"], verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert links(gateway) == []


async def test_deny_and_signed_out(gateway: Gateway, grocery: CreatedClient,
                                   browser: Browser, member: str) -> None:
    url = authorize_url(grocery.client.client_id, GROCERY_CB, "v" * 43, customer_id="g-1")
    denied = await approve(browser, url, decision="deny")
    assert query(denied) == {"error": "access_denied", "state": "st-1", "error_description":
                             "The resource owner or authorization server denied the request"}
    async with new_browser(gateway) as client:
        stranger = Browser(client)
        response = await stranger.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/portal/sign-in?next=%2Foauth")
        back = await stranger.submit(response.headers["location"],
                                     {"email": EMAIL, "password": PASSWORD, "next": url},
                                     action="/portal/sign-in")
        assert back.headers["location"] == url
    assert links(gateway) == []


async def test_metadata_advertises_the_code_flow(gateway: Gateway) -> None:
    async with new_browser(gateway) as client:
        body = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert body["authorization_endpoint"] == "https://gateway.test/oauth/authorize"
    assert body["response_types_supported"] == ["code"]
    assert body["grant_types_supported"] == ["client_credentials", "authorization_code"]
    assert body["code_challenge_methods_supported"] == ["S256"]


async def test_consent_without_csrf_issues_no_code(gateway: Gateway, browser: Browser,
                                                   grocery: CreatedClient, member: str) -> None:
    url = authorize_url(grocery.client.client_id, GROCERY_CB, "v" * 43, customer_id="g-1")
    page = await browser.get(url)
    assert "Kolos Grocery" in page.text
    response = await browser.client.post(url, data={"decision": "approve"})
    assert response.status_code == 403
    assert "location" not in response.headers
    with gateway.services.engine.connect() as conn:
        assert conn.execute(select(t.oauth_authorization_codes)).all() == []


async def test_customer_linked_to_another_member_is_refused(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str) -> None:
    services = gateway.services
    other = enrol_customer(services.engine, services.clock, "grocery", "g-1")
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(grocery.client.client_id, GROCERY_CB,
                                                    verifier, customer_id="g-1"))
    before = links(gateway)
    response = await exchange(gateway, grocery, query(callback)["code"], verifier)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description":
                               "this customer is linked to another member"}
    assert links(gateway) == before == [("grocery", "g-1", other.member_id, "enrolment")]
    with services.engine.connect() as conn:
        used = conn.execute(select(t.oauth_authorization_codes.c.used_at)).scalar_one()
    assert used is None


async def test_token_request_with_another_redirect_uri(
        gateway: Gateway, browser: Browser, grocery: CreatedClient, member: str) -> None:
    verifier = secrets.token_urlsafe(48)
    callback = await approve(browser, authorize_url(grocery.client.client_id, GROCERY_CB,
                                                    verifier, customer_id="g-1"))
    code = query(callback)["code"]
    for uri in ("https://grocery.test/other", ""):
        response = await exchange(gateway, grocery, code, verifier, redirect_uri=uri)
        assert response.status_code == 400, uri
        assert response.json() == {"error": "invalid_grant",
                                   "error_description": "Invalid 'redirect_uri' in request."}
    assert links(gateway) == []
    assert (await exchange(gateway, grocery, code, verifier)).status_code == 200
