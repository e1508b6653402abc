"""The authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636), on authlib's grant core.

A member, signed in to the portal, approves a client; the client gets a code at its registered
redirect URI and exchanges it, with the PKCE verifier, for a token. Our policies:

* Redirect URIs match a registered one exactly; there is no default (``redirect_uri`` is
  required). ``state`` is required (CSRF protection for the client, §10.12).
* PKCE is required of every client, with ``code_challenge_method=S256`` said explicitly;
  ``plain`` (and an absent method, which means plain) is ``invalid_request``.
* Codes live :data:`CODE_TTL` (60 s), are stored as SHA-256 only, and are single use: a second
  exchange is ``invalid_grant`` and revokes the token issued from the first (§4.1.2, §10.5).
* A **partner** client (confidential) names its own customer in ``customer_id``; the exchange
  links that customer to the member (``via="oauth"``) and answers, beside a normal partner
  token, the pairwise ``member_reference`` and the ``customer_id``.
* An **app** client (public, ``token_endpoint_auth_method=none``) gets a member token.
* A code approved at or before the member's last password reset is ``invalid_grant``: it was
  approved in a portal session the reset signed out (decision 036).

Blocking, like the rest of the server core: call it from a worker thread."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import Engine, insert, select, update

from gateway.auth import scopes as scope_list
from gateway.auth.clients import OAuthClient
from gateway.auth.revocation import RevocationStore
from gateway.auth.tokens import LEEWAY_SECONDS, MAX_TTL_SECONDS, TokenService
from gateway.core.clock import Clock
from gateway.db.tables import member_token_cutoffs, members, oauth_authorization_codes
from gateway.db.uow import UnitOfWork
from gateway.members.identity import PAIRWISE_SECRET, IdentityRepository, member_reference
from gateway.members.repository import MemberRepository

CODE_TTL = timedelta(seconds=60)
MAX_CUSTOMER_ID = 128
_CODES = oauth_authorization_codes


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredCode:
    """One ``oauth_authorization_codes`` row, as authlib's grant reads it."""

    code_hash: str
    client_id: str
    member_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    customer_id: str | None
    created_at: datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class CodeStore:
    """The storage and the exchange; the grant below only adapts authlib to it."""

    def __init__(self, *, engine: Engine, clock: Clock, tokens: TokenService,
                 revocations: RevocationStore) -> None:
        self.engine = engine
        self.clock = clock
        self.tokens = tokens
        self.revocations = revocations

    def save(self, code: str, *, client_id: str, member_id: str, redirect_uri: str, scope: str,
             code_challenge: str, customer_id: str | None) -> None:
        with UnitOfWork(self.engine) as uow:
            now = self.clock.now()
            uow.conn.execute(insert(_CODES), {
                "code_hash": _hash(code), "client_id": client_id, "member_id": member_id,
                "redirect_uri": redirect_uri, "scope": scope, "code_challenge": code_challenge,
                "customer_id": customer_id, "created_at": now, "expires_at": now + CODE_TTL})
            uow.commit()

    def find(self, code: str, client_id: str) -> StoredCode | None:
        """The code if it is live and this client's; a used one revokes its token first."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_CODES).where(_CODES.c.code_hash == _hash(code))).first()
        if row is None or row.client_id != client_id:
            return None
        if row.used_at is not None:
            self._revoke(row.access_jti)
            return None
        if self.clock.now() >= row.expires_at:
            return None
        return StoredCode(row.code_hash, row.client_id, row.member_id, row.redirect_uri,
                          row.scope, row.code_challenge, row.customer_id, row.created_at)

    def exchange(self, client: OAuthClient, code: StoredCode) -> dict[str, Any]:
        """Mark the code used and answer its token; for a partner, link its customer."""
        if client.public:
            issued = self.tokens.issue(client, [scope_list.Scope.MEMBER], member_id=code.member_id)
        else:
            issued = self.tokens.issue(client, scope_list.parse_scope(code.scope))
        body: dict[str, Any] = {"access_token": issued.access_token, "token_type": "Bearer",
                                "expires_in": issued.expires_in, "scope": issued.scope}
        with UnitOfWork(self.engine) as uow:
            now = self.clock.now()
            used = uow.conn.execute(
                update(_CODES).where(_CODES.c.code_hash == code.code_hash,
                                     _CODES.c.used_at.is_(None))
                .values(used_at=now, access_jti=issued.jti)).rowcount
            if used:
                self._complete(uow, client, code, now, body)
                uow.commit()
        if not used:  # a concurrent exchange won: this one is a reuse
            self.find_and_revoke(code.code_hash)
            raise InvalidGrantError(description="the code has been used already")
        return body

    def _complete(self, uow: UnitOfWork, client: OAuthClient, code: StoredCode, now: datetime,
                  body: dict[str, Any]) -> None:
        # By primary key: the member, and the cut-off of a password reset (decision 036). The
        # member's row is locked first (PostgreSQL; SQLite serialises writers whole), as the
        # reset locks it before reading its clock: a reset in flight commits before this reads
        # its cut-off, or reads a clock later than this token's (issued above) after it.
        repo = MemberRepository(uow.conn)
        repo.lock(code.member_id)
        status, cutoff = uow.conn.execute(
            select(members.c.status, member_token_cutoffs.c.tokens_valid_from)
            .outerjoin(member_token_cutoffs, member_token_cutoffs.c.member_id == members.c.id)
            .where(members.c.id == code.member_id)).one()
        if status != "active":
            raise InvalidGrantError(description="the member account is no longer active")
        if cutoff is not None and code.created_at <= cutoff:
            # Approved in a portal session the reset signed out: its token would outlive it.
            raise InvalidGrantError(description="the code was approved before the member's "
                                    "password was reset; ask again")
        if client.public:
            return
        assert client.partner_id is not None and code.customer_id is not None
        self._link(uow, client.partner_id, code.customer_id, code.member_id, now,
                   client.client_id)
        secret = IdentityRepository(uow.conn).secret(PAIRWISE_SECRET, now)
        body["member_reference"] = member_reference(secret, client.partner_id, code.member_id)
        body["customer_id"] = code.customer_id

    def find_and_revoke(self, code_hash: str) -> None:
        with self.engine.connect() as conn:
            jti = conn.execute(select(_CODES.c.access_jti)
                               .where(_CODES.c.code_hash == code_hash)).scalar_one_or_none()
        self._revoke(jti)

    def _link(self, uow: UnitOfWork, partner_id: str, customer_id: str, member_id: str,
              now: datetime, client_id: str) -> None:
        repo = MemberRepository(uow.conn)
        repo.lock(member_id)
        current = repo.member_for_customer(partner_id, customer_id)
        if current == member_id:
            return
        if current is not None:
            raise InvalidGrantError(description="this customer is linked to another member")
        if repo.customer_for_member(partner_id, member_id) is not None:
            raise InvalidGrantError(
                description="the member is linked at this partner under another customer id")
        repo.link(partner_id, customer_id, member_id, now, via="oauth",
                  actor=f"client:{client_id}")

    def _revoke(self, jti: str | None) -> None:
        if jti:
            until = self.clock.now() + timedelta(seconds=MAX_TTL_SECONDS + LEEWAY_SECONDS)
            self.revocations.revoke(jti, until)


class S256Challenge(CodeChallenge):  # type: ignore[misc]  # authlib ships no type hints
    """RFC 7636, required, S256 only (an absent method would mean ``plain``)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(description="code_challenge is required (PKCE, S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                description="code_challenge_method must be S256 (plain is not accepted)")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge_method(self, authorization_code: StoredCode) -> str:
        return "S256"


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic", "client_secret_post", "none"]

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        data, client = self.request.payload.data, self.request.client.client
        if not data.get("state"):
            raise InvalidRequestError(description="state is required", redirect_uri=redirect_uri)
        customer_id = data.get("customer_id")
        if client.public and customer_id is not None:
            raise InvalidRequestError(description="customer_id is for partner clients only",
                                      redirect_uri=redirect_uri, state=data.get("state"))
        if not client.public and (not customer_id or not customer_id.strip()
                                  or len(customer_id) > MAX_CUSTOMER_ID):
            raise InvalidRequestError(
                description=f"customer_id (1 to {MAX_CUSTOMER_ID} characters) is required",
                redirect_uri=redirect_uri, state=data.get("state"))
        return redirect_uri

    def validate_requested_scope(self) -> None:
        requested = self.request.payload.scope
        if requested is not None and not self.request.client.get_allowed_scope(requested):
            raise InvalidScopeError(description="none of the requested scopes is allowed")

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.codes.save(
            code, client_id=request.client.get_client_id(), member_id=str(request.user),
            redirect_uri=request.payload.redirect_uri, scope=request.scope,
            code_challenge=data["code_challenge"], customer_id=data.get("customer_id"))

    def query_authorization_code(self, code: str, client: Any) -> StoredCode | None:
        found: StoredCode | None = self.server.codes.find(code, client.get_client_id())
        return found

    def authenticate_user(self, authorization_code: StoredCode) -> str:
        return authorization_code.member_id

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        store: CodeStore = self.server.codes
        body = store.exchange(self.request.client.client, self.request.authorization_code)
        return 200, body, self.TOKEN_RESPONSE_HEADER
