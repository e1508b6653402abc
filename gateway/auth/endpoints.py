"""Starlette routes for the OAuth endpoints: translate HTTP ⇄ the framework-free server core.

``auth_routes(auth)`` returns the token, introspection and revocation endpoints (form posts,
RFC 6749 Appendix B), the JWK Set and the RFC 8414 metadata document. Each handler only parses
the request and runs the blocking core in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import server as oauth
from gateway.auth.service import AuthService

_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Handler = Callable[[Request], Awaitable[Response]]


def auth_routes(auth: AuthService) -> list[Route]:
    base = auth.settings.issuer.rstrip("/")
    max_body = auth.settings.limits.max_body_bytes

    def form_endpoint(path: str, endpoint: str,
                      call: Callable[[oauth.HttpRequest], oauth.HttpResponse]) -> Route:
        async def handle(request: Request) -> Response:
            body = await request.body()
            if len(body) > max_body:
                return _invalid_request("the request body is too large")
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if body and content_type != _FORM:
                return _invalid_request(f"send the parameters as {_FORM}")
            try:
                form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            except (UnicodeDecodeError, ValueError):
                return _invalid_request("the request body is not valid form data")
            http = oauth.HttpRequest(
                method=request.method,
                uri=f"{base}{path}",
                headers=dict(request.headers),
                form=form,
                address=request.client.host if request.client else None,
                admitted=True,
            )
            # The budgets on the event loop (as the GraphQL limit is): a refused request never
            # takes a worker thread.
            result = auth.server.admit(endpoint, http, write=False)
            if result is None:
                result = await anyio.to_thread.run_sync(call, http)
            return JSONResponse(
                result.body, status_code=result.status, headers=dict(result.headers)
            )

        return Route(path, handle, methods=["POST"])

    async def jwks(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(auth.keys.jwks)
        # Short cache: after a rotation the new key signs at once; clients refetch on a new kid.
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})

    async def metadata(request: Request) -> Response:
        return JSONResponse(auth.metadata(), headers={"Cache-Control": "public, max-age=3600"})

    return [
        form_endpoint(oauth.TOKEN_PATH, "token", auth.server.token),
        form_endpoint(oauth.INTROSPECTION_PATH, "introspection", auth.server.introspect),
        form_endpoint(oauth.REVOCATION_PATH, "revocation", auth.server.revoke),
        Route(oauth.JWKS_PATH, jwks, methods=["GET"]),
        Route(oauth.METADATA_PATH, metadata, methods=["GET"]),
    ]


def _invalid_request(description: str) -> Response:
    body = {"error": "invalid_request", "error_description": description}
    return JSONResponse(body, status_code=400, headers=_NO_STORE)
