"""What a challenge is, and the pure arithmetic of its windows and progress (no I/O here).

A challenge has an owner (a partner, or ``coalition``) who funds its completion bonus; a window
(a calendar month, a rolling span of ``days`` from the member's first qualifying purchase, or a
streak of consecutive ISO weeks); qualifying conditions (the partners where a purchase counts,
a minimum spend); what is counted (qualifying purchases, distinct brands, or streak weeks); the
target, the bonus points and a badge. Everything is UTC; windows are half-open ``[start, end)``.

Progress in a window is recomputed from that window's progress rows (:func:`progress`), never
kept as a running counter, so a return that undoes a purchase undoes exactly what it counted."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

COALITION = "coalition"
CAMPAIGN_PREFIX = "challenge:"  # promotion_awards rows name the challenge as this campaign id
WEEK = timedelta(days=7)


class WindowKind(enum.StrEnum):
    MONTH = "month"  # the calendar month (UTC) of the purchase
    ROLLING = "rolling"  # ``days`` from the first qualifying purchase not in an earlier window
    STREAK = "streak"  # consecutive ISO weeks (Monday 00:00 UTC), each with a purchase


class Count(enum.StrEnum):
    PURCHASES = "purchases"  # qualifying purchases
    BRANDS = "brands"  # distinct partners with a qualifying purchase (coalition only)
    WEEKS = "weeks"  # consecutive ISO weeks with a qualifying purchase (streaks)


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str  # stored id: coalition ones as given, a partner's as ``partner:id``
    owner: str  # the funder of the bonus
    name: str
    window: WindowKind
    count: Count
    target: int
    bonus_points: int
    badge: str
    starts_at: datetime
    ends_at: datetime | None = None
    days: int | None = None  # rolling windows only
    partners: frozenset[str] = frozenset()  # empty: a purchase at any brand
    min_spend_minor: int | None = None  # with ``currency``: a purchase of at least this
    currency: str | None = None
    version: int = 1

    @property
    def funder(self) -> str:
        return self.owner

    @property
    def campaign_id(self) -> str:
        return CAMPAIGN_PREFIX + self.id

    def in_force(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)

    def qualifies(self, partner_id: str, amount_minor: int, currency: str) -> bool:
        """A purchase at ``partner_id`` of ``amount_minor`` counts (its net amount after
        returns is checked the same way). A minimum spend is in one currency: a purchase in
        another does not meet it (there is no FX here)."""
        if self.partners and partner_id not in self.partners:
            return False
        if amount_minor <= 0:
            return False
        if self.min_spend_minor is None:
            return True
        return currency == self.currency and amount_minor >= self.min_spend_minor


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    starts_at: datetime
    ends_at: datetime  # streaks: the end of the last consecutive week counted so far
    completed: bool = False


def month_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)


def week_start(at: datetime) -> datetime:
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def window_for(challenge: Challenge, at: datetime, latest: Window | None) -> Window:
    """The window a qualifying purchase at ``at`` counts in. ``latest``: the member's latest
    window of this challenge that starts at or before ``at`` (None: none yet)."""
    if challenge.window is WindowKind.MONTH:
        start = month_start(at)
        return Window(f"M{start:%Y-%m}", start, next_month(start))
    if challenge.window is WindowKind.ROLLING:
        if latest is not None and latest.starts_at <= at < latest.ends_at:
            return latest
        start = at.astimezone(UTC).replace(microsecond=0)
        return Window(f"R{start:%Y%m%dT%H%M%SZ}", start, start + timedelta(days=challenge.days
                                                                           or 1))
    # A streak: joins the latest run if the purchase is in a week it counted (or a gap a return
    # left), or, while the run is not complete, in the week right after it.
    if latest is not None and at < latest.ends_at:
        return latest
    if latest is not None and not latest.completed and at < latest.ends_at + WEEK:
        return latest
    start = week_start(at)
    return Window(f"W{start:%Y-%m-%d}", start, start + WEEK)


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """One ``challenge_progress`` row: an earn (+amount) or a return of it (-amount)."""

    purchase_operation_id: str
    partner_id: str
    occurred_at: datetime
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    ends_at: datetime  # the window's end (streaks: after the last consecutive week counted)


def progress(challenge: Challenge, window: Window, rows: Iterable[ProgressRow]) -> Progress:
    """What counts in ``window``: each purchase with its returns netted; a purchase counts while
    its net amount still qualifies (a return below the minimum spend undoes it)."""
    net: dict[str, int] = {}
    first: dict[str, ProgressRow] = {}
    for row in rows:
        net[row.purchase_operation_id] = net.get(row.purchase_operation_id, 0) + row.amount_minor
        first.setdefault(row.purchase_operation_id, row)
    counted = [first[p] for p, amount in net.items()
               if challenge.qualifies(first[p].partner_id, amount, first[p].currency)]
    if challenge.count is Count.PURCHASES:
        return Progress(len(counted), window.ends_at)
    if challenge.count is Count.BRANDS:
        return Progress(len({r.partner_id for r in counted}), window.ends_at)
    weeks = {week_start(r.occurred_at) for r in counted}
    run = 0
    while window.starts_at + run * WEEK in weeks:
        run += 1
    return Progress(run, window.starts_at + run * WEEK)


def deadline(challenge: Challenge, window: Window) -> datetime:
    """Until when the member can still add to ``window``: its end, or for a streak the end of
    the week after the last week counted."""
    return window.ends_at + WEEK if challenge.window is WindowKind.STREAK else window.ends_at
