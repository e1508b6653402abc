"""RFC 7662 introspection and RFC 7009 revocation: only ever about the caller's own tokens."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine, select

from gateway.auth.clients import CreatedClient
from gateway.db.tables import revoked_tokens

ISSUER = "https://auth.coalition.test"


def _basic(created: CreatedClient) -> tuple[str, str]:
    return (created.client.client_id, created.secret)


async def test_active_token_introspects_to_its_claims(
    http: httpx.AsyncClient, shop_client: CreatedClient, get_token: Any
) -> None:
    token = await get_token(http, shop_client, "points:earn")
    response = await http.post(
        "/oauth/introspect", data={"token": token}, auth=_basic(shop_client)
    )
    assert response.status_code == 200
    body = response.json()
    client_id = shop_client.client.client_id
    assert body == {
        "active": True,
        "token_type": "Bearer",
        "scope": "points:earn",
        "client_id": client_id,
        "sub": client_id,
        "aud": "coalition-gateway",
        "iss": ISSUER,
        "exp": body["iat"] + 600,
        "iat": body["iat"],
        "jti": body["jti"],
        "partner_id": "shop",
    }


async def test_introspection_with_post_auth(
    http: httpx.AsyncClient, shop_client: CreatedClient, get_token: Any
) -> None:
    token = await get_token(http, shop_client)
    response = await http.post(
        "/oauth/introspect",
        data={
            "token": token,
            "client_id": shop_client.client.client_id,
            "client_secret": shop_client.secret,
        },
    )
    assert response.status_code == 200
    assert response.json()["active"] is True


async def test_unknown_token_is_inactive(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post(
        "/oauth/introspect", data={"token": "garbage"}, auth=_basic(shop_client)
    )
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_another_clients_token_is_inactive(
    http: httpx.AsyncClient,
    shop_client: CreatedClient,
    fuel_client: CreatedClient,
    get_token: Any,
) -> None:
    token = await get_token(http, shop_client)
    response = await http.post("/oauth/introspect", data={"token": token}, auth=_basic(fuel_client))
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_introspection_needs_an_authenticated_client(
    http: httpx.AsyncClient, shop_client: CreatedClient, get_token: Any
) -> None:
    token = await get_token(http, shop_client)
    anonymous = await http.post("/oauth/introspect", data={"token": token})
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    wrong = await http.post(
        "/oauth/introspect",
        data={"token": token},
        auth=(shop_client.client.client_id, "wrong"),
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_missing_token_parameter_is_invalid_request(
    http: httpx.AsyncClient, shop_client: CreatedClient
) -> None:
    response = await http.post("/oauth/introspect", data={}, auth=_basic(shop_client))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}


async def test_revoked_token_is_inactive_and_stored_by_jti(
    http: httpx.AsyncClient, shop_client: CreatedClient, get_token: Any, engine: Engine
) -> None:
    token = await get_token(http, shop_client)
    before = await http.post("/oauth/introspect", data={"token": token}, auth=_basic(shop_client))
    jti, exp = before.json()["jti"], before.json()["exp"]

    revoked = await http.post("/oauth/revoke", data={"token": token}, auth=_basic(shop_client))
    assert revoked.status_code == 200
    assert revoked.json() == {}

    after = await http.post("/oauth/introspect", data={"token": token}, auth=_basic(shop_client))
    assert after.json() == {"active": False}
    with engine.connect() as conn:
        rows = conn.execute(select(revoked_tokens)).all()
    assert [(r.jti, int(r.expires_at.timestamp())) for r in rows] == [(jti, exp)]

    again = await http.post("/oauth/revoke", data={"token": token}, auth=_basic(shop_client))
    assert again.status_code == 200
    with engine.connect() as conn:
        assert len(conn.execute(select(revoked_tokens)).all()) == 1


async def test_revoking_an_unknown_token_is_200(
    http: httpx.AsyncClient, shop_client: CreatedClient, engine: Engine
) -> None:
    response = await http.post(
        "/oauth/revoke",
        data={"token": "never-issued", "token_type_hint": "access_token"},
        auth=_basic(shop_client),
    )
    assert response.status_code == 200
    assert response.json() == {}
    with engine.connect() as conn:
        assert conn.execute(select(revoked_tokens)).all() == []


async def test_revoking_another_clients_token_changes_nothing(
    http: httpx.AsyncClient,
    shop_client: CreatedClient,
    fuel_client: CreatedClient,
    get_token: Any,
    engine: Engine,
) -> None:
    token = await get_token(http, shop_client)
    response = await http.post("/oauth/revoke", data={"token": token}, auth=_basic(fuel_client))
    assert response.status_code == 200
    assert response.json() == {}
    with engine.connect() as conn:
        assert conn.execute(select(revoked_tokens)).all() == []
    still = await http.post("/oauth/introspect", data={"token": token}, auth=_basic(shop_client))
    assert still.json()["active"] is True


async def test_revocation_needs_an_authenticated_client(
    http: httpx.AsyncClient, shop_client: CreatedClient, get_token: Any, engine: Engine
) -> None:
    token = await get_token(http, shop_client)
    response = await http.post("/oauth/revoke", data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    with engine.connect() as conn:
        assert conn.execute(select(revoked_tokens)).all() == []
