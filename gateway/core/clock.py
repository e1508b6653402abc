"""The one source of "now". Services take a clock so tests can pin time and move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests and simulations: it only moves when told to."""

    def __init__(self, at: datetime) -> None:
        require_utc(at)
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        require_utc(at)
        self._at = at


def require_utc(at: datetime) -> datetime:
    """Every time in the domain is timezone-aware UTC; naive times are programmer errors."""
    if at.tzinfo is None or at.utcoffset() != timedelta(0):
        raise ValueError(f"time must be timezone-aware UTC, got {at!r}")
    return at
