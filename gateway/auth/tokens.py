"""JWT access tokens (RFC 9068): issue, and verify into a :class:`Principal`.

Issued tokens carry header ``{"alg": "ES256", "typ": "at+jwt", "kid": …}`` and the claims
``iss aud sub client_id exp iat jti scope partner_id client_kind``; ``sub`` is the client id
(client credentials: the client is the subject, RFC 9068 §2.2). A member token (the coalition
app's) also carries ``member_id`` and ``iat_us``, the issue time in microseconds since the epoch
(``iat`` is whole seconds, too coarse to tell a token issued just before a password reset from
one issued just after, in the same second). Lifetimes are capped at
:data:`MAX_TTL_SECONDS` whatever the settings say.

Verification, in this order, each failure an :class:`InvalidToken` (RFC 6750 ``invalid_token``):
structure → ``alg`` in the allow-list (so ``none`` and ``HS*`` never reach a key) → ``typ`` is
``at+jwt`` → ``kid`` known → signature → ``iss`` → ``aud`` → ``exp``/``iat`` with
:data:`LEEWAY_SECONDS` → not revoked → not cut off (a member token issued at or before the
member's last password reset, decision 036) → client exists and is not disabled. Revocations,
cut-offs and clients are asked of ``revocations``, ``cutoff_lookup`` and ``client_lookup``; the
app passes the in-memory auth feed (``gateway.auth.feed``: no SQL per request, changes made by
this process seen at once, by others within its refresh bound, 1 s).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from gateway.auth.clients import ClientRegistry, OAuthClient
from gateway.auth.feed import AuthState, microseconds
from gateway.auth.keys import ALGORITHM, ALLOWED_ALGORITHMS, KeyStore
from gateway.auth.revocation import RevocationStore
from gateway.auth.scopes import format_scope, parse_scope
from gateway.core.clock import Clock
from gateway.core.ids import MemberId, PartnerId
from gateway.core.principal import Principal

MAX_TTL_SECONDS = 900
LEEWAY_SECONDS = 30
VERIFIED_CACHE_SIZE = 10_000  # distinct live tokens remembered as verified, per process
TOKEN_TYPE = "at+jwt"
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "client_id", "exp", "iat", "jti", "scope")


class InvalidToken(Exception):
    """The bearer token cannot be used: RFC 6750 §3.1 ``invalid_token`` (HTTP 401).

    ``description`` is safe to show the caller; it never echoes the token.
    """

    error = "invalid_token"
    code = "UNAUTHENTICATED"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class MissingToken(InvalidToken):
    """No bearer credentials at all: RFC 6750 §3.1 says to send no error code then."""

    error = ""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    jti: str
    scope: str
    issued_at: datetime
    expires_at: datetime

    @property
    def expires_in(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())


class TokenService:
    def __init__(
        self,
        *,
        keys: KeyStore,
        revocations: RevocationStore,
        clients: ClientRegistry,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        clock: Clock,
        client_lookup: Callable[[str], OAuthClient | None] | None = None,
        cutoff_lookup: Callable[[str], int | None] | None = None,
    ) -> None:
        """``cutoff_lookup``: a member id → the instant (µs since the epoch) at or before which
        that member's tokens are refused, or ``None``; without it no token is cut off."""
        if ttl_seconds <= 0:
            raise ValueError("token ttl must be positive")
        self._keys = keys
        self._revocations = revocations
        self._clients = clients
        self._client = client_lookup or clients.get
        self._cutoff: Callable[[str], int | None] = cutoff_lookup or (lambda _member: None)
        self._issuer = issuer
        self._audience = audience
        self._ttl = timedelta(seconds=min(ttl_seconds, MAX_TTL_SECONDS))
        self._clock = clock
        # token -> (kid, claims) of tokens that passed decode(); see _verified_claims.
        self._verified: dict[str, tuple[str, dict[str, Any]]] = {}

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    def issue(self, client: OAuthClient, scopes: Iterable[str], *,
              member_id: str | None = None) -> IssuedToken:
        """Sign a token for ``client`` with exactly ``scopes`` (narrowed by the caller). With
        ``member_id`` it is a member token (the coalition's own app acting for a signed-in
        member): ``sub`` is the member, and it carries no partner."""
        precise = self._clock.now()
        now = precise.replace(microsecond=0)
        expires_at = now + self._ttl
        jti = secrets.token_urlsafe(24)
        scope = format_scope(scopes)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": f"member:{member_id}" if member_id else client.client_id,
            "client_id": client.client_id,
            "exp": int(expires_at.timestamp()),
            "iat": int(now.timestamp()),
            "jti": jti,
            "scope": scope,
            "partner_id": None if member_id else client.partner_id,
            "client_kind": "member" if member_id else client.kind,
        }
        if member_id:
            claims["member_id"] = member_id
            claims["iat_us"] = microseconds(precise)
        signing = self._keys.signing_key()
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": signing.kid}
        token = jwt.encode(header, claims, signing.key, algorithms=[ALGORITHM])
        return IssuedToken(token, jti, scope, now, expires_at)

    def decode(self, token: str) -> dict[str, Any]:
        """Check everything a token carries by itself (not revocation, not the client row)."""
        header = _unverified_header(token)
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"the token algorithm is not accepted; use {ALGORITHM}")
        if header.get("typ") not in _ACCEPTED_TYPES:
            raise InvalidToken("the token is not an access token (typ must be at+jwt)")
        kid = header.get("kid")
        key = self._keys.verification_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("the token was signed by an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=sorted(ALLOWED_ALGORITHMS)).claims
        except JoseError as error:
            raise InvalidToken("the token signature is invalid") from error
        self._check_claims(claims)
        return claims

    def verify(self, token: str) -> Principal:
        """A usable token → who is calling. Raises :class:`InvalidToken`."""
        claims = self._verified_claims(token)
        if self._revocations.is_revoked(claims["jti"]):
            raise InvalidToken("the token has been revoked")
        if _cut_off(claims, self._cutoff):
            raise InvalidToken(_CUT_OFF)
        return self._principal(claims, self._client(claims["client_id"]))

    def verify_in_memory(self, token: str, state: AuthState | None) -> Principal | None:
        """:meth:`verify` when it needs no I/O and no signature check: the token was verified
        before (still cached) and ``state`` (the auth feed's, fresh) answers revocation and the
        client. ``None`` when it cannot say without I/O; the caller then runs :meth:`verify`
        in a worker thread. Same checks, same errors."""
        if state is None:
            return None
        cached = self._verified.get(token)
        if cached is None:
            return None
        kid, claims = cached
        if (self._clock.now().timestamp() >= claims["exp"] + LEEWAY_SECONDS
                or self._keys.verification_key(kid) is None):
            return None
        if claims["jti"] in state.revoked:
            raise InvalidToken("the token has been revoked")
        if _cut_off(claims, state.cutoffs.get):
            raise InvalidToken(_CUT_OFF)
        return self._principal(claims, state.clients.get(claims["client_id"]))

    def _principal(self, claims: Mapping[str, Any], client: OAuthClient | None) -> Principal:
        if client is None or client.disabled:
            raise InvalidToken("the client of this token is disabled")
        partner_id, member_id = claims.get("partner_id"), claims.get("member_id")
        return Principal(
            client_id=client.client_id,
            partner_id=None if partner_id is None else PartnerId(partner_id),
            scopes=parse_scope(claims["scope"]),
            kind=str(claims.get("client_kind", client.kind)),
            member_id=None if member_id is None else MemberId(member_id),
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """:meth:`decode`, remembered per token string until the token expires.

        A partner sends the same token with every request for its lifetime; checking its
        signature and claims again each time was a tenth of an earnPoints request's CPU
        (docs/benchmarks.md). A hit still re-checks expiry and that its key may still verify
        (a key past its retention stops verifying at once); revocation and the client row are
        checked on every call by :meth:`verify`, cached or not. Bounded: when full, the cache
        is emptied (tokens are re-verified once, nothing is refused)."""
        cached = self._verified.get(token)
        if cached is not None:
            kid, claims = cached
            if (self._clock.now().timestamp() < claims["exp"] + LEEWAY_SECONDS
                    and self._keys.verification_key(kid) is not None):
                return claims
            self._verified.pop(token, None)
        claims = self.decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (str(_unverified_header(token)["kid"]), claims)
        return claims

    def is_active(self, claims: Mapping[str, Any]) -> bool:
        """For introspection: not revoked, not cut off, and the client still enabled."""
        if self._revocations.is_revoked(claims["jti"]) or _cut_off(claims, self._cutoff):
            return False
        client = self._client(claims["client_id"])
        return client is not None and not client.disabled

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise InvalidToken(f"the token lacks the claims {', '.join(missing)}")
        if claims["iss"] != self._issuer:
            raise InvalidToken("the token was issued by another issuer")
        audience = claims["aud"]
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise InvalidToken("the token is meant for another audience")
        exp, iat = claims["exp"], claims["iat"]
        if not _is_number(exp) or not _is_number(iat):
            raise InvalidToken("the token exp and iat must be numbers")
        now = self._clock.now().timestamp()
        if now >= exp + LEEWAY_SECONDS:
            raise InvalidToken("the token has expired")
        if iat > now + LEEWAY_SECONDS:
            raise InvalidToken("the token was issued in the future")
        if exp - iat > MAX_TTL_SECONDS:
            raise InvalidToken("the token lifetime exceeds the maximum")
        if not isinstance(claims["jti"], str) or not isinstance(claims["scope"], str):
            raise InvalidToken("the token jti and scope must be strings")


_CUT_OFF = "the token was issued before the member's password was reset: sign in again"


def _cut_off(claims: Mapping[str, Any], cutoff_of: Callable[[str], int | None]) -> bool:
    """A member token issued at or before its member's cut-off (both in µs; a tie is refused:
    the two were concurrent, and a token issued after a reset commits always reads a later
    clock). A token without ``iat_us`` (signed before it existed) counts from the start of its
    ``iat`` second, so one issued in the reset's own second is refused: the safe side."""
    member_id = claims.get("member_id")
    if not isinstance(member_id, str):
        return False
    cutoff = cutoff_of(member_id)
    if cutoff is None:
        return False
    issued = claims.get("iat_us")
    if not isinstance(issued, int) or isinstance(issued, bool):
        issued = int(claims["iat"]) * 1_000_000
    return issued <= cutoff


def expires_at(claims: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"], UTC)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read before any key is chosen (the signature is checked after)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("the token is not a signed JWT")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except ValueError as error:
        raise InvalidToken("the token header is malformed") from error
    if not isinstance(header, dict):
        raise InvalidToken("the token header is malformed")
    return header
