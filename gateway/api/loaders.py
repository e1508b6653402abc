"""Per-request DataLoaders: one round trip per lookup kind per request (DESIGN §11).

Ten aliased ``member`` lookups asking for ``balance`` cost one membership statement and one
balance batch, not ten of each. A :class:`Loaders` is built by every request's
:class:`~gateway.api.context.Context` and dies with it, so its cache never serves one request's
answer to another (a balance read after an earn is always fresh) and never crosses partners.
Keys carry the partner id anyway, so a loader handed a key of another partner is a programmer
error caught here rather than a leak.

The balance query reads the membership and then the balance: two lookups, one after the other.
``memberships_with_balances`` does both in one call and primes ``balances`` with what it read,
so ``Member.balance`` finds its answer in the cache: one trip to the database side per request,
not two (issue 11).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Engine
from strawberry.dataloader import DataLoader

from gateway.core.clock import Clock
from gateway.ledger import balances
from gateway.ledger.model import Balance
from gateway.members import service
from gateway.members.service import Membership

T = TypeVar("T")

BalanceKey = tuple[str, str]
"""``(partner_id, member_id)``."""
MembershipKey = tuple[str, str]
"""``(partner_id, customer_id)``."""


class Loaders:
    """The loaders of one request made by one partner's token."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self.balances: DataLoader[BalanceKey, Balance] = DataLoader(
            load_fn=self._load_balances
        )
        self.memberships: DataLoader[MembershipKey, Membership | None] = DataLoader(
            load_fn=self._load_memberships
        )
        self.memberships_with_balances: DataLoader[MembershipKey, Membership | None] = (
            DataLoader(load_fn=self._load_memberships_with_balances))

    async def _load_balances(self, keys: Sequence[BalanceKey]) -> list[Balance]:
        _one_partner(keys)
        found = await _in_thread(balances.member_balances, self._engine, self._clock,
                           [m for _, m in keys])
        return [found[member_id] for _, member_id in keys]

    async def _load_memberships(self, keys: Sequence[MembershipKey]) -> list[Membership | None]:
        partner_id = _one_partner(keys)
        found = await _in_thread(service.find_memberships, self._engine, self._clock,
                           partner_id, [c for _, c in keys])
        return [found.get(customer_id) for _, customer_id in keys]

    async def _load_memberships_with_balances(
        self, keys: Sequence[MembershipKey]
    ) -> list[Membership | None]:
        partner_id = _one_partner(keys)
        found, read = await _in_thread(_memberships_with_balances, self._engine, self._clock,
                                       partner_id, [c for _, c in keys])
        for membership in found.values():
            self.balances.prime((partner_id, membership.member_id), read[membership.member_id])
        return [found.get(customer_id) for _, customer_id in keys]


def _memberships_with_balances(
    engine: Engine, clock: Clock, partner_id: str, customer_ids: list[str]
) -> tuple[dict[str, Membership], dict[str, Balance]]:
    found = service.find_memberships(engine, clock, partner_id, customer_ids)
    return found, balances.member_balances(engine, clock, [m.member_id for m in found.values()])


def _one_partner(keys: Sequence[tuple[str, str]]) -> str:
    partners = {partner_id for partner_id, _ in keys}
    if len(partners) != 1:
        raise RuntimeError(f"one request's loader got keys of partners {sorted(partners)}")
    return partners.pop()


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run a read in the worker thread pool (the services are blocking SQLAlchemy code; reads
    stay off the event loop, docs/decisions/014)."""
    return await anyio.to_thread.run_sync(partial(fn, *args))
