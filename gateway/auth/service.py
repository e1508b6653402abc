"""The auth component the app wires in: owns clients, keys, tokens, revocation and the server.

``AuthService(engine, settings, clock)`` is built once in the composition root. Resource code
calls :meth:`AuthService.authenticate` with the Starlette request and gets a
:class:`~gateway.core.principal.Principal` or an :class:`InvalidToken`, which
:func:`unauthorized_response` turns into the RFC 6750 401. All database work runs in a worker
thread (``anyio.to_thread``) so the event loop never waits on SQLite or scrypt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import server as oauth
from gateway.auth.clients import ClientRegistry
from gateway.auth.feed import REFRESH_S, AuthFeed, FedRevocationStore
from gateway.auth.keys import KeyStore
from gateway.auth.revocation import RevocationStore, SqlRevocationStore
from gateway.auth.scopes import SCOPES
from gateway.auth.throttle import EndpointLimits, MakeLimiter, in_process
from gateway.auth.tokens import (
    LEEWAY_SECONDS,
    MAX_TTL_SECONDS,
    InvalidToken,
    MissingToken,
    TokenService,
)
from gateway.core.clock import Clock
from gateway.core.principal import Principal
from gateway.settings import Settings


class AuthService:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        *,
        revocations: RevocationStore | None = None,
        refresh_s: float = REFRESH_S,
        make_limiter: MakeLimiter = in_process,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        # Clients, revocations and member cut-offs in memory, current within ``refresh_s``
        # (gateway.auth.feed): verifying a token runs no SQL.
        self.feed = AuthFeed(engine, clock, refresh_s=refresh_s)
        self.clients = ClientRegistry(engine, clock, on_change=self.feed.changed)
        # A retired key verifies for as long as any token could: the cap, not today's TTL.
        self.keys = KeyStore(
            engine, clock, retention=timedelta(seconds=MAX_TTL_SECONDS + LEEWAY_SECONDS)
        )
        self.revocations: RevocationStore = FedRevocationStore(
            revocations or SqlRevocationStore(engine, clock), self.feed)
        self.tokens = TokenService(
            keys=self.keys,
            revocations=self.revocations,
            clients=self.clients,
            client_lookup=self.feed.client,
            cutoff_lookup=self.feed.cutoff,
            issuer=settings.issuer,
            audience=settings.audience,
            ttl_seconds=settings.token_ttl_seconds,
            clock=clock,
        )
        self.server = oauth.OAuthServer(
            engine=engine,
            clients=self.clients,
            tokens=self.tokens,
            revocations=self.revocations,
            clock=clock,
            limits=EndpointLimits.build(make_limiter),
        )

    async def authenticate(self, request: Request) -> Principal:
        """``Authorization: Bearer <jwt>`` → the caller. Raises :class:`InvalidToken`."""
        token = bearer_token(request.headers.get("authorization"))
        # A token seen before, with the feed fresh, is answered from memory on the event loop:
        # a thread hop per request cost more than the check (issue 11).
        known = self.tokens.verify_in_memory(token, self.feed.fresh())
        if known is not None:
            return known
        return await anyio.to_thread.run_sync(self.tokens.verify, token)

    def flush_audit(self) -> None:
        """Write the refused-authentication counts held in memory (on shutdown, periodically)."""
        self.server.refusals.flush(everything=True)

    def metadata(self) -> dict[str, Any]:
        return oauth.metadata(self.settings.issuer, scopes=[scope.name for scope in SCOPES])

    @staticmethod
    def unauthorized_response(error: InvalidToken) -> Response:
        return unauthorized_response(error)


def bearer_token(header: str | None) -> str:
    """The token of an RFC 6750 §2.1 ``Authorization`` header value."""
    if not header or not header.strip():
        raise MissingToken("send an access token: Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        raise InvalidToken("the Authorization header must be: Bearer <token>")
    return token.strip()


def unauthorized_response(error: InvalidToken) -> Response:
    """HTTP 401 with the RFC 6750 §3 challenge and the GraphQL-shaped error body."""
    description = error.description.replace("\\", "").replace('"', "'")
    if error.error:
        challenge = f'Bearer error="{error.error}", error_description="{description}"'
    else:
        challenge = "Bearer"  # RFC 6750 §3.1: no error code when no credentials were sent
    body = {"errors": [{"message": error.description, "extensions": {"code": error.code}}]}
    return JSONResponse(
        body,
        status_code=401,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )
