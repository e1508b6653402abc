"""Asymmetric signing keys for access tokens: ES256 (ECDSA P-256, SHA-256) and nothing else.

Keys live in ``signing_keys`` (private PEM + public JWK, ``kid`` = RFC 7638 thumbprint). The
first signature creates a key. :meth:`KeyStore.rotate` creates a new signing key and retires the
old one; a retired key no longer signs but still verifies, and stays published in the JWKS,
until every token it signed has expired (``retired_at`` + the longest token lifetime + leeway).

Keys are cached in memory. A token with an unknown ``kid`` (another worker rotated) makes the
store reload from the database, at most once per ``reload_interval_seconds`` so that a flood of
made-up ``kid`` values cannot turn into a flood of queries. The private PEM is stored as is:
protecting the database (and its backups) protects the keys.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import Connection, Engine, insert, select, update

from gateway.auth.audit import record, write_transaction
from gateway.core.clock import Clock
from gateway.db.tables import signing_keys

ALGORITHM = "ES256"
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({ALGORITHM})
"""The only algorithms a token may name: exactly the ones we sign with (RFC 8725 §3.1)."""

_CURVE = "P-256"


@dataclass(frozen=True, slots=True)
class StoredKey:
    kid: str
    key: ECKey
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


class KeyStore:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        retention: timedelta,
        reload_interval_seconds: float = 1.0,
        signing_refresh_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``retention``: how long a retired key keeps verifying (max token TTL + leeway)."""
        self._engine = engine
        self._clock = clock
        self._retention = retention
        self._reload_interval = reload_interval_seconds
        self._signing_refresh = signing_refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, StoredKey] = {}
        self._last_reload: float | None = None

    # --- signing -------------------------------------------------------------------------------
    def signing_key(self) -> StoredKey:
        """The newest unretired key, creating one on first use.

        The cache is refreshed every ``signing_refresh_seconds`` so that a rotation done by
        another process (the CLI) is picked up long before the old key's grace time ends.
        """
        with self._lock:
            if (
                self._last_reload is None
                or self._monotonic() - self._last_reload >= self._signing_refresh
            ):
                self._reload()
            active = self._active()
            if active is not None:
                return active
            with write_transaction(self._engine, exclusive=signing_keys) as conn:
                # Another worker may have created one since we loaded: re-read under the lock.
                row = conn.execute(
                    select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))
                ).first()
                if row is None:
                    self._insert_new(conn, actor="system", action="key.create")
            self._reload()
            active = self._active()
            assert active is not None
            return active

    def rotate(self, *, actor: str) -> StoredKey:
        """Retire every signing key and create a new one; returns the new key."""
        with self._lock, write_transaction(self._engine, exclusive=signing_keys) as conn:
            now = self._clock.now()
            retired = [
                row.kid
                for row in conn.execute(
                    select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))
                )
            ]
            conn.execute(
                update(signing_keys)
                .where(signing_keys.c.retired_at.is_(None))
                .values(retired_at=now)
            )
            kid = self._insert_new(conn, actor=actor, action="key.rotate", retired=retired)
        with self._lock:
            self._reload()
            return self._keys[kid]

    # --- verification --------------------------------------------------------------------------
    def verification_key(self, kid: str) -> ECKey | None:
        """The public key for ``kid`` if it may still verify tokens, else ``None``."""
        with self._lock:
            stored = self._keys.get(kid)
            if stored is None and self._may_reload():
                self._reload()
                stored = self._keys.get(kid)
            if stored is None or not self._is_published(stored):
                return None
            return stored.key

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set to publish: the signing key first, then retired keys still in their
        grace time, most recently retired first. Creates the signing key if there is none."""
        self.signing_key()
        with self._lock:
            if self._may_reload():
                self._reload()
            published = [k for k in self._keys.values() if self._is_published(k)]
        published.sort(key=lambda k: (k.retired_at is None, k.retired_at or k.created_at))
        return {"keys": [dict(k.public_jwk) for k in reversed(published)]}

    # --- internals (call with the lock held) ---------------------------------------------------
    def _active(self) -> StoredKey | None:
        active = [k for k in self._keys.values() if k.retired_at is None]
        return max(active, key=lambda k: k.created_at, default=None)

    def _is_published(self, stored: StoredKey) -> bool:
        return stored.retired_at is None or (
            self._clock.now() < stored.retired_at + self._retention
        )

    def _may_reload(self) -> bool:
        return (
            self._last_reload is None
            or self._monotonic() - self._last_reload >= self._reload_interval
        )

    def _reload(self) -> None:
        with self._engine.connect() as conn:
            rows = conn.execute(select(signing_keys)).all()
        keys: dict[str, StoredKey] = {}
        for row in rows:
            cached = self._keys.get(row.kid)
            key = cached.key if cached is not None else ECKey.import_key(row.private_pem)
            keys[row.kid] = StoredKey(
                kid=row.kid,
                key=key,
                public_jwk=json.loads(row.public_jwk),
                created_at=row.created_at,
                retired_at=row.retired_at,
            )
        self._keys = keys
        self._last_reload = self._monotonic()

    def _insert_new(
        self, conn: Connection, *, actor: str, action: str, retired: list[str] | None = None
    ) -> str:
        key = ECKey.generate_key(_CURVE, private=True)
        kid = key.thumbprint()
        public = {**key.as_dict(private=False), "kid": kid, "alg": ALGORITHM, "use": "sig"}
        now = self._clock.now()
        conn.execute(
            insert(signing_keys).values(
                kid=kid,
                private_pem=key.as_pem(private=True).decode(),
                public_jwk=json.dumps(public, sort_keys=True),
                created_at=now,
            )
        )
        record(
            conn,
            at=now,
            actor=actor,
            action=action,
            subject=kid,
            detail={"alg": ALGORITHM, "retired": retired or []},
        )
        return kid
