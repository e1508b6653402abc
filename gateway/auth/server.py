"""authlib's authorization-server core, behind a framework-free adapter.

The web layer turns its request into an :class:`HttpRequest` (method, canonical URI, headers,
form pairs) and gets an :class:`HttpResponse` back; nothing here imports Starlette. authlib does
the protocol: client authentication (``client_secret_basic``, ``client_secret_post``), the
client credentials grant (RFC 6749 §4.4), introspection (RFC 7662) and revocation (RFC 7009).
We supply the storage hooks and three policies:

* Scope (RFC 6749 §3.3): the requested scope is narrowed to the client's allowance; scopes
  outside it are silently not granted, and only an empty result is ``invalid_scope``. No scope
  requested means the whole allowance. No refresh tokens, ever.
* Introspection and revocation only see the caller's own tokens. Anyone else's token, like an
  unknown one, is ``{"active": false}`` / a no-op 200: a foreign token looks exactly like a
  missing one (DESIGN §8).
* Before any secret is hashed, each request spends its client id's and its source address's
  budget (``gateway.auth.throttle``): over budget is 429 with ``Retry-After``, and a refused
  authentication costs more units (back-off).
* Client ids are not enumerable by timing: an unknown or disabled client checks the presented
  secret against a decoy hash, so every refusal with a secret costs one scrypt, like a wrong
  secret does (``authenticate_client``).
* Two client authentication methods in one request (HTTP Basic and a ``client_secret`` in the
  body) are ``invalid_request`` (RFC 6749 §2.3.1).
* Refused client authentications (and rate-limited requests) are counted in ``audit_log`` with
  the reason (``unknown_client``, ``client_disabled``, ``bad_secret``, ``rate_limited``…), one
  row per client id, address and minute (:class:`~gateway.auth.audit.RefusalLog`); never the
  secret.

All methods are blocking (database reads, scrypt): call them from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import Engine

from gateway.auth import scopes as scope_list
from gateway.auth.audit import Refusal, RefusalLog
from gateway.auth.clients import ClientRegistry, OAuthClient
from gateway.auth.codes import CodeGrant, CodeStore, S256Challenge
from gateway.auth.revocation import RevocationStore
from gateway.auth.throttle import EndpointLimits
from gateway.auth.tokens import InvalidToken, TokenService, expires_at
from gateway.core.clock import Clock
from gateway.core.ids import ClientId

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ["client_credentials", "authorization_code"]
AUTHORIZATION_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    uri: str  # canonical public URI (issuer + path): TLS may end at a proxy in front of us
    headers: Mapping[str, str]
    form: Sequence[tuple[str, str]] = ()
    address: str | None = None  # the source address, for its rate limit
    admitted: bool = False  # the caller ran OAuthServer.admit already (on its event loop)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]] = field(default_factory=list)


# --- authlib models ----------------------------------------------------------------------------
class _Client(ClientMixin):  # type: ignore[misc]  # authlib ships no type hints
    def __init__(self, client: OAuthClient) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = scope_list.parse_scope(scope) if scope else self.client.allowed_scopes
        return scope_list.format_scope(requested & self.client.allowed_scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact match (RFC 6749 §3.1.2.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client.public:  # app clients: no secret, only the code grant with PKCE
            return method == "none" and endpoint == "token"
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.client.kind in ("partner", "app")

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "authorization_code":
            return self.client.kind in ("partner", "app")
        return grant_type == "client_credentials" and not self.client.public


class _AccessToken(TokenMixin):  # type: ignore[misc]
    """A decoded JWT seen through authlib's token interface."""

    def __init__(self, claims: dict[str, Any], *, active: bool) -> None:
        self.claims = claims
        self.active = active

    def check_client(self, client: _Client) -> bool:
        return bool(self.claims["client_id"] == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.claims["scope"])

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(self.claims["iat"])

    def is_expired(self) -> bool:
        return False  # decode() refused expired tokens already

    def is_revoked(self) -> bool:
        return not self.active


class Headers(dict[str, str]):
    """HTTP header names are case-insensitive; authlib looks up ``"Authorization"``."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__((name.lower(), value) for name, value in headers.items())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, headers=Headers(request.headers))
        self._form = dict(request.form)
        self.payload = BasicOAuth2Payload(self._form)
        self.address = request.address

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


# --- grant and endpoints -----------------------------------------------------------------------
class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        client: _Client = self.request.client
        requested = self.request.payload.scope
        if requested is not None and not requested.strip():
            raise InvalidScopeError(description="the scope parameter is empty")
        if requested and not scope_list.parse_scope(requested) & scope_list.ALL_SCOPES:
            raise InvalidScopeError(description="none of the requested scopes exist")
        if not client.get_allowed_scope(requested):
            raise InvalidScopeError(
                description="none of the requested scopes is allowed for this client"
            )


class _TokenLookup:
    tokens: TokenService

    def query_token(self, token_string: str, token_type_hint: str | None) -> _AccessToken | None:
        try:
            claims = self.tokens.decode(token_string)
        except InvalidToken:
            return None
        return _AccessToken(claims, active=self.tokens.is_active(claims))


class _Introspection(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, server: OAuthServer, tokens: TokenService) -> None:
        super().__init__(server)
        self.tokens = tokens

    def check_permission(self, token: _AccessToken, client: _Client, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: _AccessToken) -> dict[str, Any]:
        claims = token.claims
        names = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "partner_id")
        body = {name: claims[name] for name in names if name in claims}
        return {"active": True, "token_type": "Bearer", **body}


class _Revocation(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS
    SUPPORTED_TOKEN_TYPES = ("access_token", "refresh_token")  # hint accepted, never needed

    def __init__(self, server: OAuthServer, tokens: TokenService, store: RevocationStore) -> None:
        super().__init__(server)
        self.tokens = tokens
        self.store = store

    def authenticate_token(self, request: _Request, client: _Client) -> _AccessToken | None:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is None or not token.check_client(client):
            return None  # RFC 7009 §2.2: an invalid or foreign token gets the same 200
        return token

    def revoke_token(self, token: _AccessToken, request: _Request) -> None:
        self.store.revoke(token.claims["jti"], expires_at(token.claims))


# --- the server --------------------------------------------------------------------------------
class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        engine: Engine,
        clients: ClientRegistry,
        tokens: TokenService,
        revocations: RevocationStore,
        clock: Clock,
        limits: EndpointLimits | None = None,
    ) -> None:
        super().__init__(scopes_supported=[scope.name for scope in scope_list.SCOPES])
        self._engine = engine
        self.limits = limits or EndpointLimits.build()
        self.refusals = RefusalLog(engine, clock)
        self._client_auth = ClientAuthentication(self._authenticating_client)
        self._clients = clients
        self._tokens = tokens
        self._clock = clock
        self.codes = CodeStore(engine=engine, clock=clock, tokens=tokens,
                               revocations=revocations)
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(CodeGrant, [S256Challenge(required=True)])
        self.register_token_generator("default", self._generate_token)
        self.register_endpoint(_Introspection(self, tokens))
        self.register_endpoint(_Revocation(self, tokens, revocations))

    # public, framework-free entry points
    def token(self, request: HttpRequest) -> HttpResponse:
        return self._guarded("token", request, lambda: self.create_token_response(request))

    def introspect(self, request: HttpRequest) -> HttpResponse:
        return self._guarded(
            "introspection", request,
            lambda: self.create_endpoint_response("introspection", request),
        )

    def revoke(self, request: HttpRequest) -> HttpResponse:
        return self._guarded(
            "revocation", request, lambda: self.create_endpoint_response("revocation", request)
        )

    # authlib hooks
    def query_client(self, client_id: str) -> _Client | None:
        client = self._clients.get(client_id)
        if client is None or client.disabled:
            return None
        return _Client(client)

    def _authenticating_client(self, client_id: str) -> _Client:
        """``query_client`` for client authentication only: an unknown or disabled client is a
        decoy that checks the secret against a decoy hash and refuses it (same cost, same
        answer). The authorization endpoint keeps :meth:`query_client` (None when unknown)."""
        client = self._clients.get(client_id)
        if client is None or client.disabled:
            client = _decoy(client_id)
        return _Client(client)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """JWTs are self-contained: nothing to store (revocation stores jtis on demand)."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal bus here; authlib calls this after client auth and revocation."""

    def create_oauth2_request(self, request: HttpRequest | _Request) -> _Request:
        return request if isinstance(request, _Request) else _Request(request)

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> HttpResponse:
        return HttpResponse(status, dict(body or {}), list(headers))

    def validate_requested_scope(self, scope: str | None) -> None:
        """Unknown scope names are dropped by narrowing, not refused (see the grant)."""

    def authenticate_client(
        self, request: _Request, methods: list[str], endpoint: str = "token"
    ) -> _Client:
        """authlib's client authentication, with every refusal audited and made uniform.

        authlib answers an unknown client differently from a wrong secret (and with 400 or 401
        depending on the method); we answer all of them alike, 401 ``invalid_client``, so the
        response does not tell which client ids exist.
        """
        try:
            client: _Client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            client_id, _, _ = _presented(request.headers, request.form)
            self.limits.failed(client_id, request.address)
            self._audit_refusal(request, endpoint)
            raise InvalidClientError(
                status_code=401, description="client authentication failed"
            ) from error
        return client

    # internals
    def _generate_token(
        self,
        grant_type: str,
        client: _Client,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        granted = scope_list.parse_scope(client.get_allowed_scope(scope))
        issued = self._tokens.issue(client.client, granted)
        return {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }

    def admit(self, endpoint: str, request: HttpRequest, *, write: bool = True
              ) -> HttpResponse | None:
        """The budgets, before anything is hashed: None to go on, or the 429 (503) answer.

        Cheap and free of database work with ``write=False``, so a web adapter runs it on its
        event loop: a flood of refused requests then never reaches a worker thread, whose
        Python work would contend for the GIL with every other partner's requests."""
        client_id, _, method = _presented(Headers(request.headers), dict(request.form))
        decision = self.limits.admit(client_id, request.address)
        if decision.allowed:
            return None
        self.refusals.refused(Refusal(endpoint, client_id, request.address, "rate_limited",
                                      method), write=write)
        return _too_many(decision.retry_after_s, unavailable=decision.unavailable)

    def _guarded(
        self, endpoint: str, request: HttpRequest, call: Callable[[], object]
    ) -> HttpResponse:
        form = dict(request.form)
        _, _, method = _presented(Headers(request.headers), form)
        refused = None if request.admitted else self.admit(endpoint, request)
        if refused is not None:
            return refused
        try:
            names = [name for name, _ in request.form]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise InvalidRequestError(
                    description=f"repeated parameters: {', '.join(repeated)}"
                )
            if method == "client_secret_basic" and "client_secret" in form:
                raise InvalidRequestError(  # RFC 6749 §2.3.1: one method per request
                    description="use one client authentication method: HTTP Basic or "
                                "client_secret in the body, not both"
                )
            response = call()
        except OAuth2Error as error:  # raised before authlib's own handling (request parsing)
            status, body, headers = error()
            return HttpResponse(status, dict(body), list(headers))
        assert isinstance(response, HttpResponse)
        return response

    def _audit_refusal(self, request: _Request, endpoint: str) -> None:
        client_id, secret, method = _presented(request.headers, request.form)
        if not client_id:
            reason = "no_credentials"
        else:
            client = self._clients.get(client_id)
            if client is None:
                reason = "unknown_client"
            elif client.disabled:
                reason = "client_disabled"
            else:
                reason = "bad_secret" if secret else "no_secret"
        self.refusals.refused(Refusal(endpoint, client_id, request.address, reason, method))


def _presented(
    headers: Mapping[str, str], form: Mapping[str, str]
) -> tuple[str | None, str | None, str]:
    """(client id, secret, method) as the request presents them, before anything is checked."""
    client_id, secret = extract_basic_authorization(headers)
    if client_id:
        return client_id, secret, "client_secret_basic"
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id:
        return None, None, "none"
    return client_id, secret, "client_secret_post" if secret else "none"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _decoy(client_id: str) -> OAuthClient:
    """A disabled confidential client: its secret check costs one scrypt and fails."""
    return OAuthClient(client_id=ClientId(client_id), name="", kind="partner", partner_id=None,
                       allowed_scopes=frozenset(), created_at=_EPOCH, rotated_at=None,
                       disabled_at=_EPOCH, secret_hash="")


def _too_many(retry_after_s: int, *, unavailable: bool) -> HttpResponse:
    """429 (or 503 while the limiter's Redis is down and limits fail closed), in the OAuth
    error shape (RFC 6749 §5.2) with ``Retry-After`` (RFC 9110 §10.2.3)."""
    headers = [("Retry-After", str(retry_after_s)), ("Cache-Control", "no-store"),
               ("Pragma", "no-cache")]
    if unavailable:
        body = {"error": "temporarily_unavailable",
                "error_description": "the rate limiter is unavailable; retry later"}
        return HttpResponse(503, body, headers)
    body = {"error": "too_many_requests",
            "error_description": "too many requests for this client or source address; "
                                 f"retry after {retry_after_s} s"}
    return HttpResponse(429, body, headers)


def metadata(issuer: str, *, scopes: Sequence[str]) -> dict[str, Any]:
    """The RFC 8414 authorization server metadata document for ``issuer``."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "jwks_uri": f"{base}{JWKS_PATH}",
        "introspection_endpoint": f"{base}{INTROSPECTION_PATH}",
        "revocation_endpoint": f"{base}{REVOCATION_PATH}",
        "authorization_endpoint": f"{base}{AUTHORIZATION_PATH}",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(scopes),
    }
