"""RFC 8414 metadata and the JWK Set."""

from __future__ import annotations

import httpx

from gateway.auth.service import AuthService

ISSUER = "https://auth.coalition.test"


async def test_metadata_document(http: httpx.AsyncClient) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.json() == {
        "issuer": ISSUER,
        "token_endpoint": f"{ISSUER}/oauth/token",
        "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
        "introspection_endpoint": f"{ISSUER}/oauth/introspect",
        "revocation_endpoint": f"{ISSUER}/oauth/revoke",
        "authorization_endpoint": f"{ISSUER}/oauth/authorize",
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        # "none": public app clients at the token endpoint (authorization code + PKCE only)
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "scopes_supported": [
            "points:earn",
            "points:redeem",
            "points:reverse",
            "members:link",
            "members:read",
            "offers:manage",
            "webhooks:manage",
            "settlement:read",
            "settlement:close",
            "admin",
            "member",
            "reports:read",
        ],
    }


async def test_jwks_publishes_only_public_parts(
    http: httpx.AsyncClient, auth: AuthService
) -> None:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    keys = response.json()["keys"]
    kid = auth.keys.signing_key().kid
    assert [sorted(k) for k in keys] == [["alg", "crv", "kid", "kty", "use", "x", "y"]]
    assert (keys[0]["kid"], keys[0]["alg"], keys[0]["crv"]) == (kid, "ES256", "P-256")


def test_server_core_does_not_import_starlette() -> None:
    import ast
    from pathlib import Path

    import gateway.auth.server as core

    tree = ast.parse(Path(core.__file__).read_text())
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] == "starlette" for name in imported)
