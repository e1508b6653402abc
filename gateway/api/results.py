"""The one place a resolver turns a domain error into a typed union member."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from gateway.api import errors as e
from gateway.core.errors import DomainError

T = TypeVar("T")

# Every mutation may meet these: bad input, a missing scope, rate limiting.
COMMON: tuple[type[e.Error], ...] = (
    e.InvalidInputError, e.ForbiddenError, e.RateLimitedError,
)
# Every points mutation keyed by an idempotency key may also meet these.
KEYED: tuple[type[e.Error], ...] = (*COMMON, e.IdempotencyKeyReusedError, e.InvalidAmountError)


async def attempt(run: Callable[[], Awaitable[T]], allowed: Iterable[type[e.Error]]) -> Any:
    try:
        return await run()
    except DomainError as exc:
        return e.to_error(exc, allowed)
