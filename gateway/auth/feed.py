"""OAuth clients, revoked tokens and member cut-offs held in memory, kept current through a
change counter.

Verifying a token needs three facts besides its signature: it is not revoked, its client
exists and is not disabled, and (a member token) it was issued after the member's last password
reset (``member_token_cutoffs``, decision 036). Asking the database on every request cost
queries per request (issue 11). Instead each process holds every client, every live revocation
and every recent cut-off in memory and, at most once per ``refresh_s``, reads the change
counter (``auth_changes``, one primary-key row, bumped in the same transaction as any change:
``gateway.db.auth_changes``); when it moved, it reloads all three.

Guarantee: a revocation, a member cut-off, a disabled client or a rotated-out client made by
any process (another worker, another host, the CLI) is refused by every worker at most
``refresh_s`` (plus one poll's query time) after it committed; changes made through this
process's own ``AuthService`` take effect here at once (:meth:`AuthFeed.changed`; the portal
calls it after a password reset). ``REFRESH_S`` is 1 second. While the database cannot be read
the last loaded state is kept and the poll is retried on the next request."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.auth.clients import OAuthClient, client_from_row
from gateway.auth.revocation import RevocationStore
from gateway.core.clock import Clock
from gateway.db.auth_changes import version
from gateway.db.tables import member_token_cutoffs, oauth_clients, revoked_tokens

REFRESH_S = 1.0
# Revocations of tokens expired longer ago than this are not loaded: such a token fails its
# expiry check anyway (30 s of leeway, gateway.auth.tokens); the margin covers clock skew.
KEEP_EXPIRED = timedelta(minutes=10)
# Cut-offs older than this are not loaded: every token issued before one has expired by then
# (15-minute cap + 30 s leeway, gateway.auth.tokens); the margin covers clock skew.
KEEP_CUTOFFS = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class AuthState:
    version: int
    revoked: frozenset[str]
    clients: dict[str, OAuthClient]
    # member id -> the instant (microseconds since the epoch) at or before which that member's
    # tokens are refused; recent cut-offs only (KEEP_CUTOFFS).
    cutoffs: dict[str, int] = field(default_factory=dict)


class AuthFeed:
    def __init__(self, engine: Engine, clock: Clock, *, refresh_s: float = REFRESH_S) -> None:
        self._engine = engine
        self._clock = clock
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._state: AuthState | None = None
        self._checked = -math.inf
        # Bumped by changed(): a poll that read the database before a change it was told of
        # must not mark itself fresh (state()).
        self._generation = 0
        self.reloads = 0  # full loads done (tests and metrics)

    def is_revoked(self, jti: str) -> bool:
        return jti in self.state().revoked

    def client(self, client_id: str) -> OAuthClient | None:
        return self.state().clients.get(client_id)

    def cutoff(self, member_id: str) -> int | None:
        """The member's tokens issued at or before this (µs since the epoch) are refused."""
        return self.state().cutoffs.get(member_id)

    def revoked(self, jti: str) -> None:
        """This process revoked ``jti`` (committed): refuse it here at once."""
        with self._lock:
            if self._state is not None:
                self._state = AuthState(self._state.version, self._state.revoked | {jti},
                                        self._state.clients, self._state.cutoffs)
            self._checked = -math.inf

    def changed(self) -> None:
        """This process changed clients, revocations or cut-offs (committed): poll on the next
        call, also when a poll is in flight now (it may have read before the change)."""
        self._generation += 1
        self._checked = -math.inf

    def fresh(self) -> AuthState | None:
        """The state if it needs no poll now (no I/O), else ``None``."""
        state = self._state
        if state is not None and time.monotonic() - self._checked < self._refresh_s:
            return state
        return None

    def state(self) -> AuthState:
        state = self._state
        if state is not None and time.monotonic() - self._checked < self._refresh_s:
            return state
        with self._lock:
            if self._state is not None and time.monotonic() - self._checked < self._refresh_s:
                return self._state
            generation = self._generation
            try:
                self._state = self._poll(self._state)
            except SQLAlchemyError:
                if self._state is None:
                    raise
                # Keep the last state and poll again after refresh_s, not on every request:
                # with the database down each retry waited out a connect timeout under the lock.
                self._checked = time.monotonic()
                return self._state
            if generation == self._generation:  # else told of a change meanwhile: poll again
                self._checked = time.monotonic()
            return self._state

    def _poll(self, state: AuthState | None) -> AuthState:
        with self._engine.connect() as conn:
            # The counter first: a change committed after this read is at worst loaded now
            # and loaded again on the next poll; never missed.
            current = version(conn)
            if state is not None and state.version == current:
                return state
            since: datetime = self._clock.now() - KEEP_EXPIRED
            revoked = frozenset(conn.execute(
                select(revoked_tokens.c.jti).where(revoked_tokens.c.expires_at >= since)
            ).scalars())
            clients = {row.client_id: client_from_row(row)
                       for row in conn.execute(select(oauth_clients))}
            cutoffs = {str(member): microseconds(valid_from) for member, valid_from in conn.execute(
                select(member_token_cutoffs.c.member_id, member_token_cutoffs.c.tokens_valid_from)
                .where(member_token_cutoffs.c.tokens_valid_from
                       >= self._clock.now() - KEEP_CUTOFFS))}
        self.reloads += 1
        return AuthState(current, revoked, clients, cutoffs)


def microseconds(at: datetime) -> int:
    """``at`` (aware) as whole microseconds since the Unix epoch: exact integer arithmetic
    (``timestamp()`` is a float and may round the last digit)."""
    return (at - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FedRevocationStore:
    """A :class:`RevocationStore` that answers ``is_revoked`` from the feed (no I/O) and writes
    through ``inner`` (SQL, or Redis in front of SQL), telling the feed at once."""

    def __init__(self, inner: RevocationStore, feed: AuthFeed) -> None:
        self.inner = inner
        self._feed = feed

    def revoke(self, jti: str, expires_at: datetime) -> None:
        self.inner.revoke(jti, expires_at)
        self._feed.revoked(jti)

    def is_revoked(self, jti: str) -> bool:
        return self._feed.is_revoked(jti)
