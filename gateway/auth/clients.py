"""OAuth clients: create, list, disable, rotate the secret; verify a presented secret.

A client secret is random, shown once at creation or rotation, and stored only as a slow salted
hash (stdlib scrypt; the parameters travel in the hash string so they can be raised later without
breaking old hashes). Kinds: ``partner`` (bound to exactly one partner), ``finance`` (bound to
one partner or coalition-wide) and ``admin`` (coalition-wide). Every admin action writes an
``audit_log`` row in the same transaction as the change; no row ever holds a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, Row, insert, select, update

from gateway.auth import scopes as scope_list
from gateway.auth.audit import record, write_transaction
from gateway.core.clock import Clock, SystemClock
from gateway.core.errors import InvalidInput, NotFound
from gateway.core.ids import ClientId, PartnerId, new_id
from gateway.db.auth_changes import bump
from gateway.db.tables import oauth_clients, partners

# scrypt cost: n=2**14, r=8 uses 16 MiB and ~50 ms per hash; OWASP's minimum for scrypt.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_HASH_BYTES = 32
_MAXMEM = 64 * 1024 * 1024
# What an unknown, disabled or secretless client's presented secret is checked against: the
# hash of a random secret nobody knows, at today's parameters, so every refusal costs one scrypt
# like a wrong secret does and response times do not tell which client ids exist.
DECOY_HASH = ("scrypt$n=16384,r=8,p=1$wfkjHluPe97P4uaQq-TqnQ$"
              "IOShnHX6zoOoTW-moZPC2XUhRMG_mn5taaTFSg42tvA")


def hash_secret(secret: str) -> str:
    """``scrypt$n=…,r=…,p=…$<salt b64>$<hash b64>`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return (
        f"scrypt$n={_SCRYPT_N},r={_SCRYPT_R},p={_SCRYPT_P}$"
        f"{_b64(salt)}${_b64(digest)}"
    )


def verify_secret(secret: str, encoded: str) -> bool:
    """Constant-time check of ``secret`` against a :func:`hash_secret` string."""
    try:
        scheme, params, salt_b64, digest_b64 = encoded.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, expected = _unb64(salt_b64), _unb64(digest_b64)
    except (ValueError, KeyError):
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(_scrypt(secret, salt, n, r, p, len(expected)), expected)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, size: int = _HASH_BYTES) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=size
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: ClientId
    name: str
    kind: str
    partner_id: PartnerId | None
    allowed_scopes: frozenset[str]
    created_at: datetime
    rotated_at: datetime | None
    disabled_at: datetime | None
    secret_hash: str = field(repr=False)
    # Exact-match redirect URIs for the authorization code flow (RFC 6749 §3.1.2).
    redirect_uris: tuple[str, ...] = ()

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def public(self) -> bool:
        """An ``app`` client has no secret (RFC 6749 §2.1): PKCE is what binds its codes."""
        return self.kind == "app"

    def check_secret(self, secret: str) -> bool:
        """Exactly one scrypt per call, whatever the client: a disabled or public (secretless)
        client checks against :data:`DECOY_HASH` and is refused."""
        if self.disabled or not self.secret_hash:
            verify_secret(secret, DECOY_HASH)
            return False
        return verify_secret(secret, self.secret_hash)


@dataclass(frozen=True, slots=True)
class CreatedClient:
    """The result of create or rotate: the secret is here and nowhere else, ever."""

    client: OAuthClient
    secret: str = field(repr=False)


def _from_row(row: Row[tuple[object, ...]]) -> OAuthClient:
    m = row._mapping
    return OAuthClient(
        client_id=ClientId(m["client_id"]),
        name=m["name"],
        kind=m["kind"],
        partner_id=None if m["partner_id"] is None else PartnerId(m["partner_id"]),
        allowed_scopes=scope_list.parse_scope(m["allowed_scopes"]),
        created_at=m["created_at"],
        rotated_at=m["rotated_at"],
        disabled_at=m["disabled_at"],
        secret_hash=m["secret_hash"],
        redirect_uris=tuple(str(m["redirect_uris"] or "").split()),
    )


client_from_row = _from_row


class ClientRegistry:
    """The ``oauth_clients`` table; sync SQLAlchemy Core (call it off the event loop)."""

    def __init__(self, engine: Engine, clock: Clock,
                 on_change: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._clock = clock
        # Called after a change committed (the auth feed of this process reloads at once).
        self._on_change = on_change or (lambda: None)

    def get(self, client_id: str) -> OAuthClient | None:
        with self._engine.connect() as conn:
            return self.get_in(conn, client_id)

    @staticmethod
    def get_in(conn: Connection, client_id: str) -> OAuthClient | None:
        row = conn.execute(
            select(oauth_clients).where(oauth_clients.c.client_id == client_id)
        ).first()
        return None if row is None else _from_row(row)

    def list(self) -> list[OAuthClient]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(oauth_clients).order_by(oauth_clients.c.client_id))
            return [_from_row(row) for row in rows]

    def create(
        self,
        *,
        name: str,
        kind: str,
        actor: str,
        partner_id: str | None = None,
        scopes: Iterable[str] | None = None,
        redirect_uris: Iterable[str] = (),
        production: bool = False,
    ) -> CreatedClient:
        """A new client. An ``app`` client is public: no secret (``CreatedClient.secret`` is
        empty). ``redirect_uris``: exact-match URIs, https in ``production`` except loopback."""
        allowed = _check_new_client(name, kind, partner_id, scopes)
        uris = check_redirect_uris(redirect_uris, production=production)
        secret = "" if kind == "app" else new_secret()
        now = self._clock.now()
        client_id = new_id("cli")
        with write_transaction(self._engine) as conn:
            if partner_id is not None and conn.execute(
                select(partners.c.id).where(partners.c.id == partner_id)
            ).first() is None:
                raise InvalidInput(f"no partner with id {partner_id!r}", field="partner_id")
            conn.execute(
                insert(oauth_clients).values(
                    client_id=client_id,
                    name=name,
                    kind=kind,
                    partner_id=partner_id,
                    secret_hash=hash_secret(secret) if secret else "",
                    allowed_scopes=scope_list.format_scope(allowed),
                    created_at=now,
                    redirect_uris=" ".join(uris),
                )
            )
            record(
                conn,
                at=now,
                actor=actor,
                action="client.create",
                subject=client_id,
                detail={
                    "name": name,
                    "kind": kind,
                    "partner_id": partner_id,
                    "scopes": sorted(allowed),
                    **({"redirect_uris": list(uris)} if uris else {}),
                },
            )
            bump(conn)
        self._on_change()
        client = self.get(client_id)
        assert client is not None
        return CreatedClient(client, secret)

    def disable(self, client_id: str, *, actor: str) -> OAuthClient:
        """Refuse the client from now on; its unexpired tokens stop verifying at once."""
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                update(oauth_clients)
                .where(oauth_clients.c.client_id == client_id)
                .where(oauth_clients.c.disabled_at.is_(None))
                .values(disabled_at=now)
            )
            if result.rowcount == 0 and not _exists(conn, client_id):
                raise NotFound(f"no OAuth client {client_id!r}", field="client_id")
            record(conn, at=now, actor=actor, action="client.disable", subject=client_id)
            bump(conn)
        self._on_change()
        client = self.get(client_id)
        assert client is not None
        return client

    def rotate_secret(self, client_id: str, *, actor: str) -> CreatedClient:
        """A new secret replaces the old one at once (the old one stops working)."""
        secret = new_secret()
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                update(oauth_clients)
                .where(oauth_clients.c.client_id == client_id)
                .values(secret_hash=hash_secret(secret), rotated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(f"no OAuth client {client_id!r}", field="client_id")
            record(conn, at=now, actor=actor, action="client.rotate_secret", subject=client_id)
            bump(conn)
        self._on_change()
        client = self.get(client_id)
        assert client is not None
        return CreatedClient(client, secret)


def _exists(conn: Connection, client_id: str) -> bool:
    found = conn.execute(
        select(oauth_clients.c.client_id).where(oauth_clients.c.client_id == client_id)
    ).first()
    return found is not None


def check_redirect_uris(uris: Iterable[str], *, production: bool) -> tuple[str, ...]:
    """Absolute URIs without a fragment (RFC 6749 §3.1.2), https in production except on a
    loopback host (RFC 8252 §7.3, native apps); compared later by exact string match."""
    checked: list[str] = []
    for uri in uris:
        parts = urlsplit(uri)
        loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment \
                or " " in uri or len(uri) > 2000:
            raise InvalidInput(f"redirect URI {uri!r} must be an absolute http(s) URI without a "
                               "fragment or spaces", field="redirect_uri")
        if production and parts.scheme != "https" and not loopback:
            raise InvalidInput(f"redirect URI {uri!r} must use https (loopback hosts excepted)",
                               field="redirect_uri")
        if uri not in checked:
            checked.append(uri)
    return tuple(checked)


def _check_new_client(
    name: str, kind: str, partner_id: str | None, scopes: Iterable[str] | None
) -> frozenset[str]:
    if not name.strip():
        raise InvalidInput("a client needs a name", field="name")
    if kind not in scope_list.CLIENT_KINDS:
        raise InvalidInput(
            f"kind must be one of {', '.join(scope_list.CLIENT_KINDS)}; got {kind!r}",
            field="kind",
        )
    if kind == "partner" and partner_id is None:
        raise InvalidInput("a partner client must be bound to a partner", field="partner_id")
    if kind == "app" and partner_id is not None:
        raise InvalidInput("an app client is the coalition's own; omit partner_id",
                           field="partner_id")
    if kind == "admin" and partner_id is not None:
        raise InvalidInput("an admin client is coalition-wide; omit partner_id", field="partner_id")
    ceiling = scope_list.DEFAULT_ALLOWANCE[kind]
    if kind == "finance" and partner_id is not None:
        # Closing is coalition-wide: a partner-bound finance client could never use it.
        ceiling = ceiling - {scope_list.Scope.SETTLEMENT_CLOSE}
        if scopes is not None and scope_list.Scope.SETTLEMENT_CLOSE in scopes:
            raise InvalidInput(
                "a finance client bound to a partner cannot close coalition periods; "
                "omit settlement:close (or omit the partner for a coalition-wide client)",
                field="scopes",
            )
    allowed = ceiling if scopes is None else frozenset(scopes)
    if not allowed:
        raise InvalidInput("a client needs at least one scope", field="scopes")
    beyond = allowed - ceiling
    if beyond:
        raise InvalidInput(
            f"a {kind} client may not hold {scope_list.format_scope(beyond)}", field="scopes"
        )
    return allowed


def ensure_demo_client(
    engine: Engine,
    partner_id: str | None,
    client_id: str,
    secret: str,
    scopes: Iterable[str],
    *,
    clock: Clock | None = None,
    redirect_uris: Iterable[str] = (),
    kind: str = "partner",
) -> OAuthClient:
    """Demo mode only: make sure a client (a partner's, or with ``kind="app"`` and an empty
    secret the public demo app) with a known id and secret exists.

    Idempotent: an existing row whose secret, partner and scopes already match is left alone;
    otherwise the row is (re)written and enabled. The partner row must exist already.
    """
    now = (clock or SystemClock()).now()
    allowed = _check_new_client(client_id, kind, partner_id, scopes)
    uris = check_redirect_uris(redirect_uris, production=False)
    registry = ClientRegistry(engine, clock or SystemClock())
    current = registry.get(client_id)
    if (
        current is not None
        and current.partner_id == partner_id
        and current.allowed_scopes == allowed
        and not current.disabled
        and current.kind == kind
        and current.redirect_uris == uris
        and (current.check_secret(secret) if secret else not current.secret_hash)
    ):
        return current
    values = {
        "name": f"demo client of {partner_id or 'the coalition'}",
        "kind": kind,
        "partner_id": partner_id,
        "secret_hash": hash_secret(secret) if secret else "",
        "allowed_scopes": scope_list.format_scope(allowed),
        "redirect_uris": " ".join(uris),
    }
    # Several workers may start at once: re-read with the table locked, so only one inserts.
    with write_transaction(engine, exclusive=oauth_clients) as conn:
        current = registry.get_in(conn, client_id)
        if current is None:
            conn.execute(
                insert(oauth_clients).values(client_id=client_id, created_at=now, **values)
            )
        else:
            conn.execute(
                update(oauth_clients)
                .where(oauth_clients.c.client_id == client_id)
                .values(rotated_at=now, disabled_at=None, **values)
            )
        record(
            conn,
            at=now,
            actor="demo",
            action="client.ensure_demo",
            subject=client_id,
            detail={"partner_id": partner_id, "scopes": sorted(allowed)},
        )
        bump(conn)
    result = registry.get(client_id)
    assert result is not None
    return result
