"""The pure arithmetic of challenges: which window a purchase counts in, and what a window's
rows add up to (returns netted, the minimum spend, brands, streak runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.challenges.model import (
    Challenge,
    Count,
    ProgressRow,
    Window,
    WindowKind,
    deadline,
    progress,
    window_for,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)


def challenge(window: WindowKind, count: Count, target: int = 3, **extra: object) -> Challenge:
    return Challenge(id="c", owner="coalition", name="c", window=window, count=count,
                     target=target, bonus_points=10, badge="b", starts_at=START,
                     **extra)  # type: ignore[arg-type]


def row(purchase: str, partner: str, at: datetime, amount: int, currency: str = "UAH"
        ) -> ProgressRow:
    return ProgressRow(purchase, partner, at, amount, currency)


def test_month_windows_follow_the_calendar_in_utc() -> None:
    c = challenge(WindowKind.MONTH, Count.BRANDS)
    w = window_for(c, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), None)
    assert (w.key, w.starts_at, w.ends_at) == ("M2026-12", datetime(2026, 12, 1, tzinfo=UTC),
                                               datetime(2027, 1, 1, tzinfo=UTC))
    assert window_for(c, datetime(2027, 1, 1, tzinfo=UTC), w).key == "M2027-01"


def test_rolling_windows_start_at_the_first_purchase() -> None:
    c = challenge(WindowKind.ROLLING, Count.PURCHASES, days=30)
    first = window_for(c, MONDAY + timedelta(hours=9, microseconds=5), None)
    assert (first.key, first.ends_at) == ("R20261102T090000Z",
                                          MONDAY + timedelta(days=30, hours=9))
    assert window_for(c, first.ends_at - timedelta(seconds=1), first) == first
    after = window_for(c, first.ends_at, first)
    assert after.key == "R20261202T090000Z"


def test_streak_runs_extend_by_the_next_week_and_break_on_a_gap() -> None:
    c = challenge(WindowKind.STREAK, Count.WEEKS)
    first = window_for(c, MONDAY + timedelta(days=2), None)
    assert (first.key, first.starts_at, first.ends_at) == (
        "W2026-11-02", MONDAY, MONDAY + timedelta(weeks=1))
    assert window_for(c, MONDAY + timedelta(days=9), first) == first  # the next week
    assert deadline(c, first) == MONDAY + timedelta(weeks=2)
    gap = window_for(c, MONDAY + timedelta(days=15), first)  # week 3 after week 1: a gap
    assert gap.key == "W2026-11-16"
    done = Window(first.key, first.starts_at, first.ends_at, completed=True)
    assert window_for(c, MONDAY + timedelta(days=9), done).key == "W2026-11-09"


def test_progress_nets_returns_against_the_minimum_spend() -> None:
    c = challenge(WindowKind.MONTH, Count.PURCHASES, min_spend_minor=2_000, currency="UAH")
    w = window_for(c, MONDAY, None)
    rows = [row("a", "grocery", MONDAY, 5_000), row("a", "grocery", MONDAY, -2_500),
            row("b", "grocery", MONDAY, 5_000), row("b", "grocery", MONDAY, -3_001),
            row("c", "grocery", MONDAY, 9_000, "EUR"), row("d", "grocery", MONDAY, 2_000)]
    # a: 2,500 left (counts); b: 1,999 (no longer); c: another currency; d: exactly the minimum.
    assert progress(c, w, rows).done == 2


def test_brands_count_distinct_partners_still_holding_a_purchase() -> None:
    c = challenge(WindowKind.MONTH, Count.BRANDS)
    w = window_for(c, MONDAY, None)
    rows = [row("a", "grocery", MONDAY, 100), row("b", "grocery", MONDAY, 100),
            row("c", "fuel", MONDAY, 100), row("c", "fuel", MONDAY, -100),
            row("b", "grocery", MONDAY, -100)]
    assert progress(c, w, rows).done == 1  # fuel fully returned; the grocery still has "a"


def test_a_streak_counts_the_consecutive_run_from_its_first_week() -> None:
    c = challenge(WindowKind.STREAK, Count.WEEKS)
    w = window_for(c, MONDAY, None)
    rows = [row("a", "grocery", MONDAY, 100), row("b", "fuel", MONDAY + timedelta(days=8), 100),
            row("c", "grocery", MONDAY + timedelta(days=15), 100)]
    found = progress(c, w, rows)
    assert (found.done, found.ends_at) == (3, MONDAY + timedelta(weeks=3))
    rows.append(row("b", "fuel", MONDAY + timedelta(days=8), -100))  # week 2 returned
    found = progress(c, w, rows)
    assert (found.done, found.ends_at) == (1, MONDAY + timedelta(weeks=1))
