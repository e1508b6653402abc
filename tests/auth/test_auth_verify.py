"""Access tokens: RFC 9068 claims as issued, and every way verification must say no."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.clients import CreatedClient
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken
from gateway.core.clock import FixedClock
from gateway.core.principal import Principal
from gateway.settings import Settings

ISSUER = "https://auth.coalition.test"  # as the settings fixture in conftest.py
AUDIENCE = "coalition-gateway"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    head, body, sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
        sig,
    )


def _compact(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), signature]
    )


def _expect_invalid(auth: AuthService, token: str, description: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        auth.tokens.verify(token)
    assert caught.value.description == description


async def test_issued_token_has_exactly_the_rfc_9068_header_and_claims(
    http: httpx.AsyncClient, auth: AuthService, shop_client: CreatedClient, get_token: Any
) -> None:
    token = await get_token(http, shop_client, "points:earn members:read")
    header, claims, _ = _segments(token)
    kid = auth.keys.signing_key().kid
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": kid}
    client_id = shop_client.client.client_id
    assert set(claims) == {
        "iss", "aud", "sub", "client_id", "exp", "iat", "jti", "scope", "partner_id",
        "client_kind",
    }
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["iat"] == int(auth.clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == 600
    assert claims["exp"] - claims["iat"] <= 900
    assert claims["scope"] == "points:earn members:read"
    assert claims["partner_id"] == "shop"
    assert claims["client_kind"] == "partner"
    assert len(claims["jti"]) >= 32


async def test_ttl_is_capped_at_15_minutes(
    engine: Engine, clock: FixedClock, shop_client: CreatedClient
) -> None:
    long = AuthService(engine, Settings(issuer=ISSUER, token_ttl_seconds=86_400), clock)
    issued = long.tokens.issue(shop_client.client, {"points:earn"})
    _, claims, _ = _segments(issued.access_token)
    assert claims["exp"] - claims["iat"] == 900
    assert issued.expires_in == 900


async def test_valid_token_verifies_to_a_principal(
    http: httpx.AsyncClient, auth: AuthService, shop_client: CreatedClient, get_token: Any
) -> None:
    token = await get_token(http, shop_client, "points:earn points:redeem")
    assert auth.tokens.verify(token) == Principal(
        client_id=shop_client.client.client_id,
        partner_id="shop",
        scopes=frozenset({"points:earn", "points:redeem"}),
        kind="partner",
    )


def test_expired_token_is_rejected(
    auth: AuthService, clock: FixedClock, shop_client: CreatedClient
) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    clock.advance(timedelta(seconds=600 + 29))  # inside the 30 s leeway: still fine
    assert auth.tokens.verify(token).client_id == shop_client.client.client_id
    clock.advance(timedelta(seconds=1))
    _expect_invalid(auth, token, "the token has expired")


def test_token_issued_in_the_future_is_rejected(
    auth: AuthService, clock: FixedClock, shop_client: CreatedClient
) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    clock.advance(timedelta(seconds=-31))
    _expect_invalid(auth, token, "the token was issued in the future")


def test_bad_signature_is_rejected(auth: AuthService, shop_client: CreatedClient) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    header, claims, signature = _segments(token)
    claims["scope"] = "points:earn points:redeem"  # tampered payload, original signature
    _expect_invalid(auth, _compact(header, claims, signature), "the token signature is invalid")


def test_alg_none_is_rejected(auth: AuthService, shop_client: CreatedClient) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    header, claims, _ = _segments(token)
    forged = _compact({**header, "alg": "none"}, claims, "")
    _expect_invalid(auth, forged, "the token algorithm is not accepted; use ES256")


def test_hs256_signed_with_the_public_key_is_rejected(
    auth: AuthService, shop_client: CreatedClient
) -> None:
    """The classic key-confusion forgery: HMAC keyed with the published public key."""
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    header, claims, _ = _segments(token)
    public = json.dumps(auth.keys.jwks()["keys"][0]).encode()
    unsigned = _compact({**header, "alg": "HS256"}, claims, "").rstrip(".")
    mac = hmac.new(public, unsigned.encode(), hashlib.sha256).digest()
    _expect_invalid(
        auth, f"{unsigned}.{_b64(mac)}", "the token algorithm is not accepted; use ES256"
    )


def test_wrong_typ_is_rejected(auth: AuthService, shop_client: CreatedClient) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    header, claims, _ = _segments(token)
    signing = auth.keys.signing_key()
    resigned = jwt.encode({**header, "typ": "JWT"}, claims, signing.key, algorithms=["ES256"])
    _expect_invalid(auth, resigned, "the token is not an access token (typ must be at+jwt)")


def test_wrong_audience_is_rejected(
    engine: Engine, clock: FixedClock, auth: AuthService, shop_client: CreatedClient
) -> None:
    other = AuthService(engine, Settings(issuer=ISSUER, audience="another-api"), clock)
    token = other.tokens.issue(shop_client.client, {"points:earn"}).access_token
    _expect_invalid(auth, token, "the token is meant for another audience")


def test_wrong_issuer_is_rejected(
    engine: Engine, clock: FixedClock, auth: AuthService, shop_client: CreatedClient
) -> None:
    other = AuthService(engine, Settings(issuer="https://evil.test", audience=AUDIENCE), clock)
    token = other.tokens.issue(shop_client.client, {"points:earn"}).access_token
    _expect_invalid(auth, token, "the token was issued by another issuer")


def test_unknown_kid_is_rejected(auth: AuthService, shop_client: CreatedClient) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    header, claims, _ = _segments(token)
    stranger = ECKey.generate_key("P-256", private=True)
    forged = jwt.encode(
        {**header, "kid": stranger.thumbprint()}, claims, stranger, algorithms=["ES256"]
    )
    _expect_invalid(auth, forged, "the token was signed by an unknown key")


def test_own_kid_with_a_foreign_key_is_rejected(
    auth: AuthService, shop_client: CreatedClient
) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    header, claims, _ = _segments(token)
    stranger = ECKey.generate_key("P-256", private=True)
    forged = jwt.encode(header, claims, stranger, algorithms=["ES256"])
    _expect_invalid(auth, forged, "the token signature is invalid")


async def test_revoked_token_is_rejected(
    http: httpx.AsyncClient, auth: AuthService, shop_client: CreatedClient, get_token: Any
) -> None:
    token = await get_token(http, shop_client)
    response = await http.post(
        "/oauth/revoke",
        data={"token": token},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 200
    _expect_invalid(auth, token, "the token has been revoked")


def test_revocation_seen_by_another_worker(
    engine: Engine, settings: Settings, clock: FixedClock, shop_client: CreatedClient
) -> None:
    """Two AuthService instances share only the database, like two processes. Each holds
    revocations in memory (gateway.auth.feed): the one that revoked refuses at once, the other
    within its refresh bound."""
    one = AuthService(engine, settings, clock)
    two = AuthService(engine, settings, clock, refresh_s=0.2)
    issued = one.tokens.issue(shop_client.client, {"points:earn"})
    assert two.tokens.verify(issued.access_token).partner_id == "shop"
    one.revocations.revoke(issued.jti, issued.expires_at)
    revoked_at = time.monotonic()
    _expect_invalid(one, issued.access_token, "the token has been revoked")
    # The bound, plus slack for a loaded machine; past it the other worker must refuse.
    while time.monotonic() - revoked_at < 0.2 + 1.0:
        try:
            two.tokens.verify(issued.access_token)
        except InvalidToken:
            break
        time.sleep(0.01)
    _expect_invalid(two, issued.access_token, "the token has been revoked")


def test_disabled_client_token_is_rejected_at_once(
    auth: AuthService, shop_client: CreatedClient
) -> None:
    token = auth.tokens.issue(shop_client.client, {"points:earn"}).access_token
    assert auth.tokens.verify(token).partner_id == "shop"
    auth.clients.disable(shop_client.client.client_id, actor="admin:t")
    _expect_invalid(auth, token, "the client of this token is disabled")


@pytest.mark.parametrize(
    ("token", "description"),
    [
        ("not-a-jwt", "the token is not a signed JWT"),
        ("a.b.c", "the token header is malformed"),
        (_b64(b"[1]") + ".e30.", "the token header is malformed"),
    ],
)
def test_garbage_is_rejected(auth: AuthService, token: str, description: str) -> None:
    _expect_invalid(auth, token, description)


# --- authenticate() and the 401 it maps to ------------------------------------------------------
@pytest.fixture
async def resource(auth: AuthService) -> Any:
    async def whoami(request: Request) -> Response:
        try:
            principal = await auth.authenticate(request)
        except InvalidToken as error:
            return auth.unauthorized_response(error)
        return JSONResponse({"client_id": principal.client_id, "partner": principal.partner_id})

    app = Starlette(routes=[Route("/whoami", whoami)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ISSUER
    ) as client:
        yield client


async def test_authenticate_accepts_a_bearer_token(
    resource: httpx.AsyncClient,
    http: httpx.AsyncClient,
    shop_client: CreatedClient,
    get_token: Any,
) -> None:
    token = await get_token(http, shop_client)
    response = await resource.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"client_id": shop_client.client.client_id, "partner": "shop"}


async def test_authenticate_rejects_an_invalid_token_with_rfc_6750_401(
    resource: httpx.AsyncClient,
) -> None:
    response = await resource.get("/whoami", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="the token is not a signed JWT"'
    )
    assert response.json() == {
        "errors": [
            {
                "message": "the token is not a signed JWT",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


async def test_authenticate_without_credentials_sends_a_bare_challenge(
    resource: httpx.AsyncClient,
) -> None:
    response = await resource.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "errors": [
            {
                "message": "send an access token: Authorization: Bearer <token>",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


async def test_authenticate_rejects_another_scheme(resource: httpx.AsyncClient) -> None:
    response = await resource.get("/whoami", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", '
        'error_description="the Authorization header must be: Bearer <token>"'
    )
