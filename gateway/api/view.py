"""The /graphql endpoint: authenticate, limit, then hand the request to Strawberry.

Before any GraphQL work: the body size is capped (413), the bearer token is verified (401 with an
RFC 6750 challenge), and the client's rate limit is charged (429 with ``Retry-After``). Only then
does Strawberry parse and execute, with a context bound to the token's partner."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gateway.api.context import Context, Services
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken
from gateway.limits import RateLimiter


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


class BodyTooLarge(Exception):
    pass


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(
        self, schema: Any, services: Services, auth: AuthService, limiter: RateLimiter
    ) -> None:
        production = services.settings.production
        super().__init__(
            schema,
            graphql_ide=None if production else "graphiql",
            allow_queries_via_get=False,
        )
        self.services = services
        self.auth = auth
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await _error(400, "BAD_REQUEST", "only HTTP is served here")(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "GET":  # the GraphiQL page in the demo; no data without a token
            await super().__call__(scope, receive, send)
            return
        response = await self._admit(request)
        if response is not None:
            await response(scope, receive, send)
            return
        limit = self.services.settings.limits.max_body_bytes
        try:
            await super().__call__(scope, _capped(receive, limit), send)
        except BodyTooLarge:
            await _too_large(limit)(scope, receive, send)

    async def _admit(self, request: Request) -> Response | None:
        limit = self.services.settings.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        try:
            principal = await self.auth.authenticate(request)
        except InvalidToken as error:
            return self.auth.unauthorized_response(error)
        decision = self.limiter.hit(f"client:{principal.client_id}")
        if not decision.allowed:
            return _error(
                429, "RATE_LIMITED",
                f"rate limit reached for this client; retry after {decision.retry_after_s} s",
                headers={"Retry-After": str(decision.retry_after_s)},
            )
        request.scope.setdefault("state", {})["principal"] = principal
        return None

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(services=self.services, principal=request.scope["state"]["principal"])


def _too_large(limit: int) -> Response:
    return _error(413, "BODY_TOO_LARGE", f"request body over {limit} bytes")


def _capped(receive: Receive, limit: int) -> Receive:
    """Count a streamed (chunked) body too: Content-Length may be absent or lie."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped
