"""The one middleware every HTTP request passes: request id, access log line, request metrics.

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which adds a task and a memory
stream per request): it wraps ``send`` to learn the status and to add ``X-Request-ID`` to every
response, 401/413/429 and errors included. It is also the error boundary: an exception no
handler caught is logged once, with its request id, and answered with a JSON 500 that carries
the id, so a partner reporting "request 7f3c..." can be found in the logs.

The access line is ``{ts, level, logger: "gateway.access", msg, request_id, method, route,
status, duration_ms, client_id, partner_id}``; the client and partner come from the principal
the /graphql view leaves in ``scope["state"]`` once the token is verified.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.logs import REQUEST_ID, request_id_from
from gateway.observability.metrics import Metrics

ACCESS = logging.getLogger("gateway.access")
ERRORS = logging.getLogger("gateway.errors")
UNMATCHED = "unmatched"  # one label for every path no route serves (scanners, typos)

_HEADER = b"x-request-id"
_ERROR_BODY = (b'{"errors":[{"message":"Unexpected error.",'
               b'"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}')


class RouteNames:
    """Path -> route template, for labels. Static paths are one dict lookup; a route with
    parameters is matched by its regex; anything else is ``unmatched``."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._static: dict[str, str] = {}
        self._patterns: list[tuple[Any, str]] = []
        for route in routes:
            path = getattr(route, "path", None)
            regex = getattr(route, "path_regex", None)
            if not isinstance(path, str):
                continue
            if "{" in path and regex is not None:
                self._patterns.append((regex, path))
            else:
                self._static[path] = path

    def __call__(self, path: str) -> str:
        name = self._static.get(path)
        if name is not None:
            return name
        for regex, template in self._patterns:
            if regex.match(path):
                return template
        return UNMATCHED


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: RouteNames) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                incoming = value
                break
        request_id = request_id_from(incoming)
        raw_id = request_id.encode()
        token = REQUEST_ID.set(request_id)
        status = 500
        response_started = False
        seconds: float | None = None
        route = ""

        def record() -> None:
            nonlocal seconds, route
            seconds = time.perf_counter() - started
            route = self.routes(scope["path"])
            self.metrics.record_request(route, scope["method"], status, seconds)

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = {**message,
                           "headers": [*message.get("headers", ()), (_HEADER, raw_id)]}
            elif (message["type"] == "http.response.body" and seconds is None
                  and not message.get("more_body", False)):
                # Counted before the last byte leaves: a client that has its answer and then
                # scrapes /metrics (on any worker) finds its request already counted.
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            ERRORS.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if seconds is None:  # else the whole answer went out (a background task failed):
                status = 500     # the access line and the count keep the status it carried
            if not response_started:
                await send({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_ERROR_BODY)).encode()), (_HEADER, raw_id)]})
                await send({"type": "http.response.body", "body": _ERROR_BODY})
        finally:
            if seconds is None:
                record()
            assert seconds is not None
            if ACCESS.isEnabledFor(logging.INFO):
                principal = scope.get("state", {}).get("principal")
                ACCESS.info("%s %s %d", scope["method"], route, status, extra={
                    "method": scope["method"], "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "client_id": getattr(principal, "client_id", None),
                    "partner_id": getattr(principal, "partner_id", None),
                })
            REQUEST_ID.reset(token)
