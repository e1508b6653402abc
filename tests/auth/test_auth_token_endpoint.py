"""POST /oauth/token: client credentials through authlib, JWTs out, refusals audited."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from sqlalchemy import Engine

from gateway.auth.clients import CreatedClient
from gateway.auth.service import AuthService

WINDOW = {"address": "127.0.0.1", "count": 1, "window_start": "2030-01-15T09:00:00+00:00",
          "window_end": "2030-01-15T09:01:00+00:00"}
PARTNER_SCOPE = ("points:earn points:redeem points:reverse members:link members:read "
                 "offers:manage webhooks:manage reports:read")


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_basic_auth_issues_a_token_with_the_full_allowance(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == PARTNER_SCOPE
    assert "refresh_token" not in body


async def test_post_auth_issues_a_token(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": shop_client.client.client_id,
            "client_secret": shop_client.secret,
            "scope": "points:earn",
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "points:earn"


async def test_scope_outside_the_allowance_is_not_granted(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "points:earn admin settlement:close"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "points:earn"
    assert _claims(response.json()["access_token"])["scope"] == "points:earn"


async def test_nothing_left_after_narrowing_is_invalid_scope(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin settlement:read"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": "none of the requested scopes is allowed for this client",
    }


async def test_wrong_secret_is_401_invalid_client_and_audited(
    http: httpx.AsyncClient, shop_client: CreatedClient, engine: Engine, audit_rows: Any,
    auth: AuthService,
) -> None:
    before = len(audit_rows(engine))
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(shop_client.client.client_id, "not-the-secret"),
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    assert response.headers["www-authenticate"] == (
        'Basic error="invalid_client", error_description="client authentication failed"'
    )
    auth.flush_audit()  # refusals are counted per minute; the test writes the count now
    rows = audit_rows(engine)[before:]
    assert [(r["actor"], r["action"], r["subject"], r["detail"]) for r in rows] == [
        (
            f"client:{shop_client.client.client_id}",
            "token.client_refused",
            shop_client.client.client_id,
            {"method": "client_secret_basic", "reason": "bad_secret", **WINDOW},
        )
    ]
    assert "not-the-secret" not in json.dumps([r["detail"] for r in rows])


async def test_unknown_client_gets_the_same_answer_and_is_audited(
    http: httpx.AsyncClient, engine: Engine, audit_rows: Any, auth: AuthService
) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "cli_nobody", "client_secret": "x"},
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    auth.flush_audit()
    rows = audit_rows(engine)
    assert [(r["action"], r["subject"], r["detail"]) for r in rows] == [
        (
            "token.client_refused",
            "cli_nobody",
            {"method": "client_secret_post", "reason": "unknown_client", **WINDOW},
        )
    ]


async def test_disabled_client_is_refused_and_audited(
    http: httpx.AsyncClient,
    auth: AuthService,
    shop_client: CreatedClient,
    engine: Engine,
    audit_rows: Any,
) -> None:
    auth.clients.disable(shop_client.client.client_id, actor="admin:t")
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    auth.flush_audit()
    last = audit_rows(engine)[-1]
    assert (last["action"], last["detail"]) == (
        "token.client_refused",
        {"method": "client_secret_basic", "reason": "client_disabled", **WINDOW},
    )


async def test_unknown_grant_type_is_400_unsupported_grant_type(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "u", "password": "p"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


async def test_non_form_body_is_invalid_request(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "send the parameters as application/x-www-form-urlencoded",
    }


async def test_repeated_parameter_is_invalid_request(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/token",
        content="grant_type=client_credentials&scope=points:earn&scope=admin",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(shop_client.client.client_id, shop_client.secret),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "repeated parameters: scope",
    }


async def test_get_is_not_allowed(http: httpx.AsyncClient) -> None:
    response = await http.get("/oauth/token")
    assert response.status_code == 405
