"""Per-request context: who is calling, the services, and per-request loaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine
from strawberry.types import Info

from gateway.api.loaders import Loaders
from gateway.auth.scopes import Scope
from gateway.core.clock import Clock
from gateway.core.errors import Forbidden
from gateway.core.ids import MemberId, PartnerId
from gateway.core.principal import Principal
from gateway.ledger.context import LedgerContext
from gateway.ledger.runner import LeaveLoop, WriteQueued, on_the_loop
from gateway.limits import InProcessRateLimiter, RateLimiter
from gateway.members.credentials import SignInLimits, sign_in_limits
from gateway.rules.store import RuleBook
from gateway.settings import Settings

T = TypeVar("T")


def _in_process(name: str, per_minute: int, burst: int) -> RateLimiter:
    return InProcessRateLimiter(per_minute, burst=burst)


@dataclass
class Services:
    """Everything a resolver may call, built once by ``gateway.app.create_app``."""

    settings: Settings
    engine: Engine
    clock: Clock
    rules: RuleBook
    ledger: LedgerContext
    # The member sign-in budgets, shared with the portal (one budget per account and address,
    # whichever door the guesses come through): mergeAccount's sign-in proof spends them.
    sign_in: SignInLimits = field(default_factory=lambda: sign_in_limits(_in_process))


@dataclass
class Context:
    services: Services
    principal: Principal
    cache: dict[Any, Any] = field(default_factory=dict)  # per request, keyed by partner
    source: str | None = None  # the client's address, for per-source guess budgets
    loaders: Loaders = field(init=False)  # built per request: no cache outlives it

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services.engine, self.services.clock)

    @property
    def partner_id(self) -> PartnerId:
        """The partner this token is bound to; a partner-less token has no partner data."""
        if self.principal.partner_id is None:
            raise Forbidden("a partner-bound token")
        return self.principal.partner_id

    @property
    def member_id(self) -> MemberId:
        """The member a member token speaks for; any other token has no member data."""
        if self.principal.kind != "member" or self.principal.member_id is None:
            raise Forbidden(Scope.MEMBER)
        return self.principal.member_id

    @property
    def max_lines(self) -> int:
        return self.services.settings.limits.max_list_items

    def require(self, scope: Scope) -> None:
        if not self.principal.has(scope):
            raise Forbidden(scope)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking service code in the worker thread pool, never on the event loop."""
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def command(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a ledger command (checks on the request, then one ``runner.run_command``). On
        SQLite with a group-commit writer it never leaves the event loop: the checks run here,
        the body is queued with the writer, and the answer is awaited until its batch is
        durable (docs/decisions/012). Otherwise (PostgreSQL, or a check that must block, such
        as a typed store code's budget and secret) it runs in the thread pool like ``run``."""
        call = partial(fn, *args, **kwargs)
        queued: WriteQueued | None = None
        with on_the_loop(self.services.ledger.engine) as here:
            if here:
                try:
                    return call()  # refused by a check before any write
                except WriteQueued as pending:
                    queued = pending
                except LeaveLoop:
                    pass
        if queued is not None:
            result: T = await queued.outcome()
            return result
        return await self.run(call)


def ctx(info: Info[Context, None]) -> Context:
    return info.context
