"""Security headers for every response, and a Content-Security-Policy for every HTML page.

One middleware (``SecurityHeaders``, installed once in ``gateway.app``) rather than a header
set in each endpoint, so a new page (the member portal under /portal) is covered without
doing anything. Every response gets ``X-Content-Type-Options: nosniff`` (a JSON error must
never be sniffed into HTML); a ``text/html`` one also gets ``HTML_POLICY`` and
``X-Frame-Options: DENY`` (``frame-ancestors 'none'`` for browsers that predate CSP 2).

The policy allows inline scripts and styles (GraphiQL's bootstrap script, the settlement
report's chart code) and unpkg.com (where Strawberry's GraphiQL page loads React and GraphiQL
from); nothing else may be loaded, framed, or posted to another origin. A page that needs a
stricter or looser policy sets its own ``Content-Security-Policy`` header: it is kept."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' https://unpkg.com",
    "style-src 'self' 'unsafe-inline' https://unpkg.com",
    "font-src 'self' data: https://unpkg.com",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
])


def add_security_headers(headers: MutableHeaders) -> None:
    """Set the headers on one response's headers (used by the middleware; call it directly
    for a response sent outside the Starlette app)."""
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", HTML_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering, streaming responses pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)
