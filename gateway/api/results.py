"""The one resolver shape, written once: check the scope, build the command, run the service off
the event loop, and answer the success or the typed error that the field's result union declares.

Every mutation (and every query with a result union) had this shape copied out by hand, with a
hand-kept tuple of the error types it may answer beside its union; the two could drift apart.
Here the allowed errors are *read from the result union's members* (``errors_of``), and
``gateway.api.errors.to_error`` is the one map from the domain error tree to those members, so
one domain error answers the same way in every field that declares it::

    _EARN = Resolver(EarnPointsResult, Scope.POINTS_EARN,
                     command=lambda c, input: input.to_command(c.partner_id, c.max_lines),
                     service=lambda s, cmd: service.earn_points(s.ledger, cmd),
                     present=EarnPointsSuccess.of)

A field whose work is not one service call (a loader read, two steps) uses ``answer`` with the
same scope check and error mapping around an async body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin

from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context, Services
from gateway.auth.scopes import Scope
from gateway.core.errors import DomainError

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 (the input)
C = TypeVar("C")  # the command
R = TypeVar("R")  # the service's result


def errors_of(result: Any) -> tuple[type[e.Error], ...]:
    """The ``Error`` members of a result union, ``Annotated[A | B | ..., strawberry.union(..)]``
    (or a bare ``A | B``)."""
    union = get_args(result)[0] if get_origin(result) is Annotated else result
    found = tuple(member for member in get_args(union)
                  if isinstance(member, type) and issubclass(member, e.Error))
    if not found:
        raise TypeError(f"{result!r} declares no Error member")
    return found


async def answer(c: Context, allowed: tuple[type[e.Error], ...], scope: Scope | None,
                 work: Callable[[], Awaitable[T]]) -> Any:
    """Run ``work`` after the scope check; a domain error becomes its typed union member."""
    try:
        if scope is not None:
            c.require(scope)
        return await work()
    except DomainError as exc:
        return e.to_error(exc, allowed)


@dataclass(frozen=True, slots=True)
class Resolver(Generic[I, C, R]):
    """One field: its result union, its scope, and three plain functions. ``command`` builds
    (and validates, without I/O) the command for the caller; ``service`` runs in the thread
    pool with the app's services; ``present`` turns its result into the success type.
    ``ledger_command``: ``service`` is a ledger command (checks, then one
    ``runner.run_command``), run by ``Context.command`` (on the event loop on SQLite)."""

    result: Any
    scope: Scope
    command: Callable[[Context, I], C]
    service: Callable[[Services, C], R]
    present: Callable[[R], Any]
    ledger_command: bool = False
    allowed: tuple[type[e.Error], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", errors_of(self.result))

    async def __call__(self, info: Info[Context, None], input: I) -> Any:
        c = info.context

        async def work() -> Any:
            cmd = self.command(c, input)
            run = c.command if self.ledger_command else c.run
            return self.present(await run(self.service, c.services, cmd))

        return await answer(c, self.allowed, self.scope, work)
