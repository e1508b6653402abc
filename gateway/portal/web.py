"""What every portal page shares: templates, the session cookie, CSRF, and security headers.

A page is one handler and one template::

    @portal.page("/history", "history.html")
    async def history(request: Request, page: Page) -> Response:
        rows = await page.run(member_history, ...)
        return page.render({"rows": rows})

:meth:`Portal.page` registers the route, sends a signed-out visitor to sign-in (and back
afterwards), refuses a POST without its CSRF token (403), and puts the security headers on
every response: a CSP with ``frame-ancestors 'none'`` (no framing: clickjacking of the consent
page), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (codes and states
stay out of Referer) and ``Cache-Control: no-store``.

CSRF: signed double submit bound to the session (OWASP). A random nonce lives in an HttpOnly
cookie; each form carries HMAC(server secret, nonce | session token). A forged cross-site post
has neither the cookie's nonce nor the secret, and a token from one session is useless in
another. The session cookie is HttpOnly, SameSite=Lax and, in production, Secure."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.core.clock import Clock
from gateway.members.secrets import server_secret
from gateway.members.sessions import SESSION_TTL, session_member
from gateway.settings import Settings

SESSION_COOKIE = "gw_session"
CSRF_COOKIE = "gw_csrf"
CSRF_FIELD = "csrf"
PREFIX = "/portal"
SIGN_IN = f"{PREFIX}/sign-in"
MAX_FORM_BYTES = 16 * 1024
_TEMPLATES = Path(__file__).resolve().parent / "templates"
T = TypeVar("T")


@dataclass
class Page:
    """One request's view of the portal: who is signed in, the posted form, and rendering."""

    portal: Portal
    request: Request
    template: str
    member_id: str | None
    session_token: str | None
    nonce: str
    form: dict[str, str] = field(default_factory=dict)
    new_nonce: bool = False
    form_action: tuple[str, ...] = ()  # extra CSP form-action sources (the consent redirect)

    async def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking domain code (database, argon2) in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(lambda: call(*args, **kwargs))

    def render(self, context: dict[str, Any] | None = None, *, status: int = 200,
               template: str | None = None) -> Response:
        values = {"csrf": self.portal.csrf_token(self.nonce, self.session_token),
                  "csrf_field": CSRF_FIELD, "signed_in": self.member_id is not None,
                  "prefix": PREFIX, "path": self.request.url.path, **(context or {})}
        html = self.portal.env.get_template(template or self.template).render(values)
        return HTMLResponse(html, status_code=status)


Handler = Callable[[Request, Page], Awaitable[Response]]


class Portal:
    def __init__(self, *, engine: Engine, clock: Clock, settings: Settings) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.env = Environment(loader=FileSystemLoader(_TEMPLATES),
                               autoescape=select_autoescape(default=True))
        self.routes: list[Route] = []
        self._csrf_key: bytes | None = None

    def page(self, path: str, template: str, *, methods: tuple[str, ...] = ("GET",),
             signed_in: bool = True, prefix: str = PREFIX) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                page = await self._page(request, template)
                if signed_in and page.member_id is None:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query
                                                 else "")
                    response = redirect(f"{SIGN_IN}?next={quote(target, safe='')}")
                elif request.method == "POST" and not await self._read_form(page):
                    response = page.render({"message": "This form has expired or did not come "
                                            "from this site. Go back, reload and try again."},
                                           status=403, template="error.html")
                else:
                    response = await handler(request, page)
                return self.finish(page, response)

            self.routes.append(Route(prefix + path, endpoint, methods=list(methods)))
            return handler

        return register

    # --- cookies, CSRF, headers ----------------------------------------------------------------
    def csrf_token(self, nonce: str, session_token: str | None) -> str:
        key = self._key()
        message = f"{nonce}|{session_token or ''}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def set_session(self, response: Response, token: str | None) -> None:
        if token is None:
            response.delete_cookie(SESSION_COOKIE, path="/", secure=self.settings.production,
                                   httponly=True, samesite="lax")
            return
        response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()),
                            path="/", secure=self.settings.production, httponly=True,
                            samesite="lax")

    def finish(self, page: Page, response: Response) -> Response:
        if page.new_nonce:
            response.set_cookie(CSRF_COOKIE, page.nonce, path="/", httponly=True,
                                secure=self.settings.production, samesite="strict")
        form_action = " ".join(("'self'", *page.form_action))
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src 'self'; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _page(self, request: Request, template: str) -> Page:
        token = request.cookies.get(SESSION_COOKIE)
        member_id = await anyio.to_thread.run_sync(session_member, self.engine, self.clock,
                                                   token) if token else None
        nonce = request.cookies.get(CSRF_COOKIE, "")
        fresh = len(nonce) != 43  # token_urlsafe(32); anything else is not ours
        if self._csrf_key is None:  # read once (made once per database), then from memory
            await anyio.to_thread.run_sync(self._key)
        return Page(self, request, template, member_id, token if member_id else None,
                    secrets.token_urlsafe(32) if fresh else nonce, new_nonce=fresh)

    async def _read_form(self, page: Page) -> bool:
        """Parse the posted form into ``page.form``; whether its CSRF token is right."""
        body = await page.request.body()
        content_type = page.request.headers.get("content-type", "").split(";")[0].strip()
        if len(body) > MAX_FORM_BYTES or content_type != "application/x-www-form-urlencoded":
            return False
        try:
            page.form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return False
        sent = page.form.pop(CSRF_FIELD, "")
        expected = self.csrf_token(page.nonce, page.session_token)
        return not page.new_nonce and hmac.compare_digest(sent, expected)

    def _key(self) -> bytes:
        if self._csrf_key is None:
            self._csrf_key = server_secret(self.engine, self.clock, "portal-csrf")
        return self._csrf_key


def redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=303)


def safe_next(target: str | None, default: str = PREFIX + "/") -> str:
    """Only a path on this site (no scheme, no host, no ``//``): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
