"""Revoked access tokens, by ``jti`` (RFC 7009): a small interface and its SQL implementation.

JWT access tokens are self-contained, so revoking one means remembering its ``jti`` until it
would have expired anyway. The store is deliberately tiny (``revoke``, ``is_revoked``) so a
Redis implementation can replace it. The SQL one keeps a local set of jtis it has seen revoked
(revocation is permanent, so that cache can only ever be right) and asks the database on a miss.
Every revocation bumps the auth change counter in its transaction (``gateway.db.auth_changes``):
the app answers ``is_revoked`` from memory (``gateway.auth.feed``), current within a bound on
every worker. With ``REDIS_URL`` this table stays the durable record and
``gateway.redis.revocations`` also writes Redis.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.auth.audit import write_transaction
from gateway.core.clock import Clock
from gateway.db.auth_changes import bump
from gateway.db.tables import revoked_tokens


class RevocationStore(Protocol):
    def revoke(self, jti: str, expires_at: datetime) -> None: ...

    def is_revoked(self, jti: str) -> bool: ...


class SqlRevocationStore:
    """``revoked_tokens`` plus an in-process set of known-revoked jtis (bounded)."""

    def __init__(self, engine: Engine, clock: Clock, *, cache_size: int = 10_000) -> None:
        self._engine = engine
        self._clock = clock
        self._cache_size = cache_size
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def revoke(self, jti: str, expires_at: datetime) -> None:
        """Idempotent: revoking a revoked token again changes nothing."""
        if not self.is_revoked(jti):
            try:
                with write_transaction(self._engine) as conn:
                    conn.execute(
                        insert(revoked_tokens).values(
                            jti=jti, expires_at=expires_at, revoked_at=self._clock.now()
                        )
                    )
                    bump(conn)
            except IntegrityError:
                pass  # revoked concurrently by another request: the outcome is the same
        self._remember(jti)

    def is_revoked(self, jti: str) -> bool:
        with self._lock:
            if jti in self._known:
                return True
        with self._engine.connect() as conn:
            found = conn.execute(
                select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)
            ).first()
        if found is not None:
            self._remember(jti)
        return found is not None

    def live(self) -> list[tuple[str, datetime]]:
        """Every revocation whose token has not expired yet: (jti, expires_at)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(revoked_tokens.c.jti, revoked_tokens.c.expires_at)
                .where(revoked_tokens.c.expires_at >= self._clock.now())
            ).all()
        return [(jti, expires_at) for jti, expires_at in rows]

    def purge_expired(self) -> int:
        """Forget revocations of tokens that have expired anyway; returns rows removed."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(revoked_tokens).where(revoked_tokens.c.expires_at < self._clock.now())
            )
            if result.rowcount:
                bump(conn)
        with self._lock:
            self._known.clear()
        return result.rowcount

    def _remember(self, jti: str) -> None:
        with self._lock:
            if len(self._known) >= self._cache_size:
                self._known.clear()
            self._known.add(jti)
