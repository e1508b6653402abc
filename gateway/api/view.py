"""The /graphql endpoint: authenticate, limit, then hand the request to Strawberry.

Before any GraphQL work: the body size is capped (413), the bearer token is verified (401 with an
RFC 6750 challenge), and the client's rate limit is charged (429 with ``Retry-After``; 503
``RATE_LIMITER_UNAVAILABLE`` while Redis is down and limits fail closed). Only then
does Strawberry parse and execute, with a context bound to the token's partner. A request
Strawberry cannot read (malformed JSON, no query, a batch while batching is off) is a 400 with
the same JSON error body as the rest, not Strawberry's plain-text one. GET serves the GraphiQL
page in development and is a 405 otherwise: queries never run over GET.

A request may name a trusted document instead of carrying its text (``gateway.api.documents``):
the document is found for the token's partner after the rate limit is charged, and a request
refused under ``GATEWAY_TRUSTED_DOCUMENTS=only`` runs nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cross_web import HTTPException  # the HTTP error Strawberry raises (its own dependency)
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from gateway.api.context import Context, Services
from gateway.api.documents import (
    TRUSTED,
    DocumentRefused,
    RefusalCode,
    TrustedDocuments,
    document_ref,
)
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken
from gateway.core.ids import DocumentId
from gateway.db.documents import document_id
from gateway.limits import RateLimiter


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


class BodyTooLarge(Exception):
    pass


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(
        self, schema: Any, services: Services, auth: AuthService, limiter: RateLimiter,
        *, on_rate_limited: Callable[[str], None] | None = None,
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
        # Called with the client id on every 429 (the app counts them for /metrics).
        self.on_rate_limited = on_rate_limited
        self.documents = TrustedDocuments(services.engine,
                                          max_tokens=services.settings.limits.max_tokens)
        self.only_trusted = services.settings.trusted_documents == "only"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await _error(400, "BAD_REQUEST", "only HTTP is served here")(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "GET":  # the GraphiQL page in development; never data
            await self._get(request)(scope, receive, send)
            return
        response = await self._admit(request)
        if response is not None:
            await response(scope, receive, send)
            return
        limit = self.services.settings.limits.max_body_bytes
        try:
            response = await self.run(Request(scope, _capped(receive, limit)))
        except BodyTooLarge:
            response = _too_large(limit)
        except DocumentRefused as exc:
            response = _error(400, exc.code, exc.message)
        except HTTPException as exc:  # what Strawberry would send as text/plain
            response = _error(exc.status_code, _HTTP_CODES.get(exc.status_code, "BAD_REQUEST"),
                              exc.reason)
        await response(scope, receive, send)

    def _get(self, request: Request) -> Response:
        """Strawberry would build a context first, and there is no principal on a GET: that was
        a KeyError and a 500 for every GET, the GraphiQL page included."""
        accept = request.headers.get("accept", "")
        if self.graphql_ide and "query" not in request.query_params and (
                "text/html" in accept or "*/*" in accept):
            return HTMLResponse(self.graphql_ide_html)
        return _error(405, "METHOD_NOT_ALLOWED", "send GraphQL as a POST with a JSON body",
                      headers={"Allow": "POST"})

    async def _admit(self, request: Request) -> Response | None:
        limit = self.services.settings.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        try:
            principal = await self.auth.authenticate(request)
        except InvalidToken as error:
            return self.auth.unauthorized_response(error)
        # Set before the limit so that the access log names the client of a 429 too.
        request.scope.setdefault("state", {})["principal"] = principal
        return rate_limited(self.limiter, principal.client_id, self.on_rate_limited)

    def parse_json(self, data: str | bytes) -> Any:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:  # json.loads raised it, a 500
                raise HTTPException(400, "the request body is not valid UTF-8") from None
        parsed = super().parse_json(data)
        if isinstance(parsed, list) and not self.services.settings.limits.allow_batching:
            # Strawberry would say only "Batching is not enabled".
            raise HTTPException(400, "query batching is off: send one GraphQL operation per "
                                "request, as a JSON object, not an array")
        # Strawberry calls .get() on whatever it parsed: a JSON string, number or null body
        # (or batch item) would be an AttributeError and a 500.
        operations = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(operation, dict) for operation in operations):
            raise HTTPException(400, "the request body must be a JSON object with a `query` "
                                "string (or, with batching on, an array of them)")
        for operation in operations:
            _document_id_to_extensions(operation)
            self._one_operation_or_named(operation)
        return parsed

    def _one_operation_or_named(self, body: dict[str, Any]) -> None:
        """A document with several operations and no ``operationName`` is a request error
        (GraphQL spec, GetOperation); Strawberry ran the first one. Parsed here only when the
        text names two operations or more (graphql-core's parse, capped like the real one)."""
        query = body.get("query")
        if body.get("operationName") or not isinstance(query, str) or len(
                _OPERATION_KEYWORD.findall(query)) < 2:
            return
        try:
            document = parse(query, max_tokens=self.services.settings.limits.max_tokens)
        except GraphQLError:
            return  # Strawberry reports the syntax error
        count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        if count > 1:
            raise HTTPException(400, f"the document holds {count} operations: say which one "
                                "to run in `operationName`")

    async def execute_single(self, request: Any, request_adapter: Any, sub_response: Any,
                             context: Context, root_value: Any,
                             request_data: GraphQLRequestData) -> ExecutionResult:
        """Resolve a trusted document, or refuse an untrusted one in mode ``only``, then run."""
        ref = document_ref(request_data.extensions)
        if ref is not None or self.only_trusted:
            await self._trusted(context, request_data, ref)
        return await super().execute_single(request, request_adapter, sub_response, context,
                                            root_value, request_data)

    async def _trusted(self, context: Context, data: GraphQLRequestData,
                       ref: DocumentId | None) -> None:
        partner_id = context.principal.partner_id
        text = data.query
        if ref is None:  # mode "only", a text: run it if that very text is registered
            if text is None:
                return  # Strawberry answers "no query"
            prepared = await self.documents.find(partner_id, document_id(text))
            if prepared is None:
                raise DocumentRefused(
                    RefusalCode.PERSISTED_QUERY_NOT_IN_LIST,
                    "this gateway runs registered documents only: send the id of a document "
                    "registered for you (`gateway documents register`), not a new text")
        else:
            if text is not None and document_id(text) != ref:
                raise DocumentRefused(RefusalCode.PERSISTED_QUERY_HASH_MISMATCH,
                                      "the query sent is not the document the id names")
            prepared = await self.documents.find(partner_id, ref)
            if prepared is None and text is not None:
                # Apollo's automatic persisted queries resend the text with its hash after a
                # NOT_FOUND: run it as any text (registering is the CLI's alone), or refuse it.
                if not self.only_trusted:
                    return
                raise DocumentRefused(RefusalCode.PERSISTED_QUERY_NOT_IN_LIST,
                                      "this gateway runs registered documents only, and this "
                                      "text is not one")
            if prepared is None:
                raise DocumentRefused(RefusalCode.PERSISTED_QUERY_NOT_FOUND,
                                      f"no document {ref} is registered for you: register it "
                                      "first, or send its text")
        data.query = prepared.body
        data.extensions = {**(data.extensions or {}), TRUSTED: prepared}

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(services=self.services, principal=request.scope["state"]["principal"],
                       source=request.client.host if request.client else None)


def _document_id_to_extensions(body: dict[str, Any]) -> None:
    """``documentId`` sits beside ``query`` in the body; Strawberry keeps only the fields it
    knows, so it travels on in ``extensions``, where the Apollo form already is."""
    if "documentId" not in body:
        return
    extensions = body.get("extensions")
    if extensions is None:
        extensions = body["extensions"] = {}
    if not isinstance(extensions, dict):
        return  # Strawberry refuses a non-object extensions
    extensions["documentId"] = body.pop("documentId")


_OPERATION_KEYWORD = re.compile(r"\b(?:query|mutation|subscription)\b")
_HTTP_CODES = {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


def rate_limited(limiter: RateLimiter, client_id: str,
                 on_rate_limited: Callable[[str], None] | None = None) -> Response | None:
    """Charge one request to the client's limit: None when admitted, else the 429 (or 503
    while Redis is down and limits fail closed) to send. Every authenticated HTTP endpoint
    calls this with the same limiter, so /graphql and /settlement/report share one budget."""
    decision = limiter.hit(f"client:{client_id}")
    if decision.unavailable:  # Redis down and limits fail closed: not the client's fault
        return _error(
            503, "RATE_LIMITER_UNAVAILABLE",
            "the rate limiter is unavailable; nothing was done, retry after "
            f"{decision.retry_after_s} s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )
    if not decision.allowed:
        if on_rate_limited is not None:
            on_rate_limited(client_id)
        return _error(
            429, "RATE_LIMITED",
            f"rate limit reached for this client; retry after {decision.retry_after_s} s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )
    return None


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
