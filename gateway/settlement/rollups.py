"""Exact per-day rollups of the settlement report (decision 016).

Ledger rows are append-only and stamped with their commit's ``now`` (``recorded_at``), so once
a UTC day has ended, plus ``MARGIN`` for a transaction that stamped its rows before midnight and
commits after it, no row is ever added to it. Such a day is *final*: its grouped sums (the rows
``SettlementRepository.flows`` and ``redemption_lots`` yield for the day) are stored once, in
one transaction with the day's marker, and never changed. A report is then the sum of its whole
days' stored sums plus the grouped passes over what is not rolled up (the partial days at its
edges and the days that are not final yet); the report code adds rows up by key, so the two are
the same sums to the point, and the prices are applied afterwards exactly as before.

The grouping key ``adjusts`` (the closed period a late operation adjusts) is fixed by then too:
it names a period closed before the row was recorded, and a close that could still be in flight
holds ``settlement_periods`` (the rollup takes the same lock, so it waits for it).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from gateway.db.tables import operations
from gateway.settlement.model import ClosedPeriod, Period
from gateway.settlement.repository import FlowRow, LotRow, SettlementRepository

DAY = timedelta(days=1)
# How long after midnight a day may still receive rows: a transaction stamps ``recorded_at``
# before its COMMIT, and on PostgreSQL commits are not in stamp order. Fifteen minutes is far
# above any write transaction here (the SQLite writer holds a batch for milliseconds, a
# PostgreSQL posting for one round of statements; a close waits on the lock, see above), and
# ``verify`` recomputes every stored day, so a row that arrived later anyway would be reported.
MARGIN = timedelta(minutes=15)


def start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def final_before(now: datetime) -> date:
    """The first day that is not final at ``now``: every day before it is."""
    return (now.astimezone(UTC) - MARGIN).date()


def whole_days(period: Period) -> tuple[date, date]:
    """``[first, last)``: the UTC days lying wholly inside ``period``."""
    first = period.start.date()
    if start_of(first) < period.start:
        first += DAY
    last = period.end.date()
    return first, max(first, last)


def uncovered(period: Period, rolled: set[date]) -> list[Period]:
    """The parts of ``period`` no rolled day covers, each a maximal interval (so a report over
    rolled days with today open is one grouped pass for the rest, not one per day)."""
    parts: list[Period] = []
    at = period.start
    first, last = whole_days(period)
    day = first
    while day < last:
        if day in rolled:
            if at < start_of(day):
                parts.append(Period.stored(at, start_of(day)))
            at = start_of(day) + DAY
        day += DAY
    if at < period.end:
        parts.append(Period.stored(at, period.end))
    return parts


def compute_day(repo: SettlementRepository, day: date, account_ids: list[int],
                closed: list[ClosedPeriod]) -> tuple[list[FlowRow], list[LotRow]]:
    """A day's grouped sums from the ledger: the report's own grouped passes over the day's
    operations (``ix_operations_recorded`` and ``ix_operations_settled_lots``)."""
    span = Period.stored(start_of(day), start_of(day) + DAY)
    return (list(repo.flows(span, account_ids, closed)),
            list(repo.redemption_lots(span, closed)))


def missing_days(conn: Connection, period: Period, now: datetime) -> list[date]:
    """The final whole days of ``period`` that are not rolled up yet."""
    first, last = whole_days(period)
    last = min(last, max(first, final_before(now)))
    if first >= last:
        return []
    have = SettlementRepository(conn).rolled_days(first, last)
    return [first + n * DAY for n in range((last - first).days) if first + n * DAY not in have]


def roll_up(conn: Connection, period: Period, now: datetime,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Store the sums of every final whole day of ``period`` not rolled up yet, on ``conn`` in
    its transaction (the caller holds the ``settlement_periods`` lock). Returns how many."""
    days = missing_days(conn, period, now)
    if not days:
        return 0
    repo = SettlementRepository(conn)
    account_ids = sorted(repo.settled_accounts())
    closed = repo.closed_periods()
    # One grouped pass keyed by day over the span of the missing days (not one per day: 4
    # statements instead of 4 per day); the days inside it stored already are skipped.
    span = Period.stored(start_of(days[0]), start_of(days[-1]) + DAY)
    wanted = set(days)
    flows: dict[date, list[FlowRow]] = {day: [] for day in days}
    lots: dict[date, list[LotRow]] = {day: [] for day in days}
    for day, flow in repo.flows_by_day(span, account_ids, closed):
        if day in wanted:
            flows[day].append(flow)
    for day, lot in repo.redemption_lots_by_day(span, closed):
        if day in wanted:
            lots[day].append(lot)
    for n, day in enumerate(days, 1):
        repo.insert_day(day, now, flows[day], lots[day])
        if progress is not None:
            progress(n, len(days))
    return len(days)


def ledger_span(conn: Connection) -> Period | None:
    """The days holding any operation (for ``gateway settlement rollup`` without bounds)."""
    row = conn.execute(select(func.min(operations.c.recorded_at),
                              func.max(operations.c.recorded_at))).first()
    if row is None or row[0] is None:
        return None
    low, high = (v if v.tzinfo else v.replace(tzinfo=UTC) for v in (row[0], row[1]))
    return Period.stored(start_of(low.date()), start_of(high.date()) + DAY)


def check(conn: Connection) -> Iterator[str]:
    """``verify``: every stored day against its rows, recomputed now (the closed periods known
    now give the same ``adjusts``: any closed since was closed after the day was final)."""
    repo = SettlementRepository(conn)
    account_ids = sorted(repo.settled_accounts())
    closed = repo.closed_periods()
    for day in repo.all_rolled_days():
        stored = repo.day_sums(day)
        if stored is None:  # pragma: no cover - listed a moment ago, in the same snapshot
            continue
        count, flows, lots = stored
        if count != len(flows) + len(lots):
            yield (f"settlement rollup {day}: marker says {count} rows, "
                   f"{len(flows) + len(lots)} stored")
        want_flows, want_lots = compute_day(repo, day, account_ids, closed)
        for what, have, want in (("flow", _bag(flows), _bag(want_flows)),
                                 ("lot", _bag(lots), _bag(want_lots))):
            for key in sorted(set(have) | set(want), key=repr):
                if have.get(key, 0) != want.get(key, 0):
                    yield (f"settlement rollup {day} {what} {key}: stored "
                           f"{have.get(key, 0)}, the ledger says {want.get(key, 0)}")


def _bag(rows: list[FlowRow] | list[LotRow]) -> Counter[tuple[Any, ...]]:
    bag: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        bag[dataclasses.astuple(row)[:-1]] += row.points  # every field but the last, points
    return bag
