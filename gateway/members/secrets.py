"""Server secrets held in memory per engine: the pairwise member-reference key and the store-code
signing key are read on nearly every partner request, and reading them from ``server_secrets``
each time would cost a statement (and, on first use, a write).

A secret never changes once made (``IdentityRepository.secret`` inserts it once, every worker and
host reads the same row), so caching it for the life of the engine is safe. On a miss the secret
is read, or made, in its own short write transaction: call :func:`server_secret` before opening a
unit of work, never inside one (SQLite admits one writer at a time)."""

from __future__ import annotations

import threading
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.db.uow import UnitOfWork
from gateway.members.identity import PAIRWISE_SECRET, IdentityRepository, member_reference

_cache: WeakKeyDictionary[Engine, dict[str, bytes]] = WeakKeyDictionary()
_lock = threading.Lock()


def server_secret(engine: Engine, clock: Clock, name: str) -> bytes:
    with _lock:
        found = _cache.get(engine, {}).get(name)
    if found is not None:
        return found
    with UnitOfWork(engine) as uow:
        value = IdentityRepository(uow.conn).secret(name, clock.now())
        uow.commit()
    with _lock:
        _cache.setdefault(engine, {})[name] = value
    return value


def reference_for(engine: Engine, clock: Clock, partner_id: str, member_id: str) -> str:
    """This partner's pairwise reference for the member (what partners see instead of its id)."""
    return member_reference(server_secret(engine, clock, PAIRWISE_SECRET), partner_id, member_id)
