"""The programme report: activity, earn/burn, breakage, liability, cross-brand members, cohorts.

Every figure is an aggregate computed by the database (docs/decisions/034: no embedded engine;
DuckDB's scanners cannot load here, and the scans below already meet the 10 s target at ten
million operations), in three scans, each streaming (flat memory, whatever the table size):

1. ``operations`` in the period, grouped by partner and kind: points earned (earns and bonuses),
   burned (redeems, captures, donations), returned, expired; breakage is expired / issued.
2. the covering index ``ix_operations_daily_cap`` (member, partner, kind, recorded_at) in member
   order, one group per member, up to the period's end: whether the member was active in the
   period (an earn or a burn), at how many brands, the month of their first earn ever, and the
   months they were active as a bit set (``SUM(DISTINCT 1 << month)`` is a bitwise OR: the terms
   are distinct powers of two). The outer query groups members by (active, brands >= 2, first
   month, month set): a few thousand rows at most, which Python turns into the cohort table.
3. ``lots`` (remaining points by origin partner: the outstanding liability, each point counted at
   the partner that issued it) and the member ``held`` and ``debt`` balances.

Liability is exact: the points members still hold = lots remaining (available and pending) +
held points; ``verify`` proves lots remaining equals the wallet and pending balances.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import Connection, Engine, text

from gateway.settlement.model import Period

Progress = Callable[[str], None]
EARN_KINDS = ("earn", "bonus")
BURN_KINDS = ("redeem", "capture", "donate")
ACTIVE_KINDS = ("earn", "redeem", "capture", "donate")  # what a member does (a bonus is not)
MAX_COHORTS = 24  # months of cohorts the table shows, ending with the period's last month
_NO_PROGRESS: Progress = lambda _: None  # noqa: E731


@dataclass(frozen=True, slots=True)
class PartnerFlows:
    partner_id: str
    earned_points: int  # earns and bonuses recorded at the partner in the period
    burned_points: int  # redeemed, captured, donated there
    returned_points: int  # taken back by returns (earned points reversed, net of refunds)
    expired_points: int  # expiries and forfeits recorded at the partner in the period


@dataclass(frozen=True, slots=True)
class Liability:
    partner_id: str  # the origin partner of the points (who issued them)
    points: int  # lots remaining: available and pending


@dataclass(frozen=True, slots=True)
class Cohort:
    month: str  # YYYY-MM of the members' first earn
    members: int
    active: tuple[int, ...]  # members active in the cohort month + 0, + 1, ... (to period end)

    def share(self, k: int) -> Fraction:
        return Fraction(self.active[k], self.members) if self.members else Fraction(0)


@dataclass(frozen=True, slots=True)
class ProgrammeReport:
    period: Period
    active_members: int  # an earn or a burn in the period
    cross_brand_members: int  # active at two or more partners in the period
    flows: tuple[PartnerFlows, ...]
    liability: tuple[Liability, ...]
    held_points: int  # authorised, not yet captured (member held balances)
    debt_points: int  # members' debts after returns (<= 0)
    cohorts: tuple[Cohort, ...]

    @property
    def earned_points(self) -> int:
        return sum(f.earned_points for f in self.flows)

    @property
    def burned_points(self) -> int:
        return sum(f.burned_points for f in self.flows)

    @property
    def expired_points(self) -> int:
        return sum(f.expired_points for f in self.flows)

    @property
    def earn_burn_ratio(self) -> Fraction | None:
        """Points earned per point burned in the period (None: nothing burned)."""
        return Fraction(self.earned_points, self.burned_points) if self.burned_points else None

    @property
    def breakage(self) -> Fraction | None:
        """Points expired / points issued over the period (None: nothing issued)."""
        return Fraction(self.expired_points, self.earned_points) if self.earned_points else None

    @property
    def liability_points(self) -> int:
        """Every point members still hold: lots remaining plus held points."""
        return sum(x.points for x in self.liability) + self.held_points


def _month_index(dialect: str, column: str) -> str:
    """Months since the cohort table's first month of a stored UTC timestamp: SQLite stores
    ISO text, read by its digits (arithmetic on text is SQLite's cheapest conversion)."""
    if dialect == "sqlite":
        return (f"((substr({column}, 1, 4) - :base_year) * 12 "
                f"+ substr({column}, 6, 2) - 1 - :base_month)")
    return (f"((CAST(EXTRACT(YEAR FROM {column}) AS INTEGER) - :base_year) * 12 "
            f"+ CAST(EXTRACT(MONTH FROM {column}) AS INTEGER) - 1 - :base_month)")


def _stored(dialect: str, at: datetime) -> object:
    """A bound as the column stores it (naive UTC; SQLite: ISO text), for a raw text query."""
    naive = at.astimezone(UTC).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else naive


def _months(at: datetime) -> int:
    return at.year * 12 + at.month - 1


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


_FLOWS = text(
    "SELECT partner_id, kind, SUM(points) FROM operations "
    "WHERE recorded_at >= :start AND recorded_at < :end "  # ix_operations_recorded (a range)
    "AND kind IN ('earn', 'bonus', 'redeem', 'capture', 'donate', 'return', 'expire', "
    "'forfeit') GROUP BY partner_id, kind")


def _members_sql(dialect: str, *, bounded: bool = False) -> str:
    # One group per member in index order (ix_operations_daily_cap covers every column read).
    hint = " INDEXED BY ix_operations_daily_cap" if dialect == "sqlite" else ""
    month = _month_index(dialect, "recorded_at")
    kinds = ", ".join(f"'{k}'" for k in ACTIVE_KINDS)
    # This module's constants only; every value is bound.
    return (
        "SELECT active, CASE WHEN brands >= 2 THEN 1 ELSE 0 END, "  # noqa: S608
        f"{_month_index(dialect, 'first_earn')}, months, COUNT(*) "
        "FROM (SELECT member_id, "
        "MAX(CASE WHEN recorded_at >= :start THEN 1 ELSE 0 END) AS active, "
        "COUNT(DISTINCT CASE WHEN recorded_at >= :start THEN partner_id END) AS brands, "
        "MIN(CASE WHEN kind = 'earn' THEN recorded_at END) AS first_earn, "
        f"SUM(DISTINCT CASE WHEN recorded_at >= :cohorts_from THEN 1 << {month} "
        "ELSE 0 END) AS months "
        f"FROM operations{hint} WHERE member_id IS NOT NULL AND kind IN ({kinds}) "
        "AND recorded_at < :end AND member_id >= :low "
        + ("AND member_id < :high " if bounded else "")
        + "GROUP BY member_id) AS m "
        f"GROUP BY active, CASE WHEN brands >= 2 THEN 1 ELSE 0 END, "
        f"{_month_index(dialect, 'first_earn')}, months")


_LIABILITY = text(
    "SELECT origin_partner_id, SUM(remaining) FROM lots WHERE remaining > 0 "
    "GROUP BY origin_partner_id ORDER BY origin_partner_id")
_MEMBER_BALANCES = text(
    "SELECT kind, SUM(balance) FROM accounts WHERE kind IN ('held', 'debt') "
    "AND balance <> 0 GROUP BY kind")


def programme_report(engine: Engine, period: Period, progress: Progress = _NO_PROGRESS,
                     *, workers: int = 2) -> ProgrammeReport:
    """The report for ``period`` (activity by ``recorded_at``). With ``workers`` > 1 its scans
    run at once on that many connections (threads: both drivers release the GIL while the
    database works), the member scan split in four parts by member id; each connection reads
    its own snapshot. Operations are append-only and stamped when recorded, so for a period
    that has ended every snapshot gives the same figures; outstanding points are "now" in any
    case (decision 034). ``workers=1``: one connection, one transaction."""
    if workers <= 1:
        with engine.connect() as conn:
            return read(conn, period, progress)
    with engine.connect() as conn:
        cuts = _member_cuts(conn, 4)
    bounds = ["", *cuts]
    halves = [(low, high) for low, high in zip(bounds, [*cuts, None], strict=True)]

    def run(task: Callable[[Connection], object]) -> object:
        with engine.connect() as conn:
            return task(conn)

    # Longest first (two halves of the period's operations, then the member parts, then the
    # lots), so the two workers finish together.
    middle = period.start + (period.end - period.start) / 2
    spans = [(period.start, middle), (middle, period.end)]
    tasks: list[Callable[[Connection], object]] = [
        *(lambda c, a=a, b=b: _sums(c, a, b, progress) for a, b in spans),
        *(lambda c, h=h: _members(c, period, h, progress) for h in halves),
        lambda c: _outstanding(c, progress)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(run, tasks))
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for part in done[:len(spans)]:
        assert isinstance(part, dict)
        for partner, kinds in part.items():
            for kind, points in kinds.items():
                sums[partner][kind] += points
    members = [m for m in done[len(spans):-1] if isinstance(m, _Members)]
    outstanding = done[-1]
    assert isinstance(outstanding, _Outstanding)
    return _report(period, members, _partner_flows(sums), outstanding)


def read(conn: Connection, period: Period, progress: Progress = _NO_PROGRESS) -> ProgrammeReport:
    """Every scan on ``conn``, one after another (one transaction when the caller opened one)."""
    flows = _flows(conn, _bounds(conn.dialect.name, period), progress)
    members = _members(conn, period, ("", None), progress)
    return _report(period, [members], flows, _outstanding(conn, progress))


@dataclass(frozen=True, slots=True)
class _Members:
    active: int
    cross: int
    sizes: dict[int, int]  # cohort month index -> members
    counts: dict[int, list[int]]  # cohort month index -> active members per month after


@dataclass(frozen=True, slots=True)
class _Outstanding:
    liability: tuple[Liability, ...]
    held: int
    debt: int


def _bounds(dialect: str, period: Period) -> dict[str, object]:
    return {"start": _stored(dialect, period.start), "end": _stored(dialect, period.end)}


def _member_cuts(conn: Connection, parts: int) -> list[str]:
    """Member ids cutting the members into ``parts`` equal ranges (an offset each over the
    members' primary key index), for the member pass to run in parts, two at a time."""
    total = int(conn.execute(text("SELECT COUNT(*) FROM members")).scalar_one())
    if total < parts:
        return []
    found = (conn.execute(text("SELECT id FROM members ORDER BY id LIMIT 1 OFFSET :n"),
                          {"n": total * k // parts}).scalar_one_or_none()
             for k in range(1, parts))
    return sorted({str(f) for f in found if f is not None})


def _members(conn: Connection, period: Period, half: tuple[str, str | None],
             progress: Progress) -> _Members:
    dialect = conn.dialect.name
    progress("members: activity, brands and cohorts, one pass over the member index"
             + ("" if half == ("", None) else f" (from {half[0]!r})"))
    last = _months(period.end - timedelta(microseconds=1))  # the period's last month
    base = last - MAX_COHORTS + 1
    cohorts_from = datetime(base // 12, base % 12 + 1, 1, tzinfo=UTC)
    params = {**_bounds(dialect, period), "base_year": base // 12, "base_month": base % 12,
              "cohorts_from": _stored(dialect, cohorts_from), "low": half[0],
              "high": half[1]}
    active = cross = 0
    sizes: dict[int, int] = defaultdict(int)
    counts: dict[int, list[int]] = {}
    sql = text(_members_sql(dialect, bounded=half[1] is not None))
    for is_active, is_cross, first, months, n in conn.execute(sql, params):
        active += int(is_active) * int(n)
        cross += int(is_active) * int(is_cross) * int(n)
        if first is None or not 0 <= int(first) < MAX_COHORTS:
            continue  # never earned, or a cohort before the table's first month
        cohort = base + int(first)
        sizes[cohort] += int(n)
        row = counts.setdefault(cohort, [0] * (last - cohort + 1))
        mask = int(months or 0)
        for k in range(len(row)):
            if mask >> (int(first) + k) & 1:
                row[k] += int(n)
    return _Members(active, cross, dict(sizes), counts)


def _outstanding(conn: Connection, progress: Progress) -> _Outstanding:
    progress("liability: lots remaining by origin partner")
    if conn.dialect.name == "sqlite":
        liability = _liability_sqlite(conn)
    else:
        liability = tuple(Liability(str(p), int(s)) for p, s in conn.execute(_LIABILITY))
    balances = {str(k): int(s) for k, s in conn.execute(_MEMBER_BALANCES)}
    return _Outstanding(liability, balances.get("held", 0), balances.get("debt", 0))


def _liability_sqlite(conn: Connection) -> tuple[Liability, ...]:
    """SQLite sorts every row for a GROUP BY without a matching index (6M lots: half the
    scan's time); one conditional sum per partner (a few dozen) reads the lots once, unsorted.
    Partners come from ``partners`` (a lot's origin is a foreign key to it)."""
    ids = [str(i) for i in conn.execute(text("SELECT id FROM partners ORDER BY id")).scalars()]
    if not ids:
        return ()
    sums = ", ".join(f"SUM(CASE WHEN origin_partner_id = :p{i} THEN remaining END)"
                     for i in range(len(ids)))
    row = conn.execute(text(f"SELECT {sums} FROM lots WHERE remaining > 0"),  # noqa: S608
                       {f"p{i}": pid for i, pid in enumerate(ids)}).one()
    return tuple(Liability(pid, int(v)) for pid, v in zip(ids, row, strict=True) if v)


def _report(period: Period, members: list[_Members], flows: tuple[PartnerFlows, ...],
            outstanding: _Outstanding) -> ProgrammeReport:
    sizes: dict[int, int] = defaultdict(int)
    counts: dict[int, list[int]] = {}
    for m in members:
        for cohort, n in m.sizes.items():
            sizes[cohort] += n
            row = counts.setdefault(cohort, [0] * len(m.counts[cohort]))
            for k, v in enumerate(m.counts[cohort]):
                row[k] += v
    cohort_rows = tuple(Cohort(_label(c), sizes[c], tuple(counts[c])) for c in sorted(sizes))
    return ProgrammeReport(period, sum(m.active for m in members),
                           sum(m.cross for m in members), flows, outstanding.liability,
                           outstanding.held, outstanding.debt, cohort_rows)


def _flows(conn: Connection, bounds: dict[str, object],
           progress: Progress = _NO_PROGRESS) -> tuple[PartnerFlows, ...]:
    progress("flows: operations in the period by partner and kind")
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for partner, kind, points in conn.execute(_FLOWS, bounds):
        sums[str(partner)][str(kind)] += int(points or 0)
    return _partner_flows(sums)


def _sums(conn: Connection, start: datetime, end: datetime,
          progress: Progress) -> dict[str, dict[str, int]]:
    """Points by partner and kind over [start, end): a part of the period's flows."""
    progress(f"flows: operations from {start:%Y-%m-%d %H:%M} by partner and kind")
    dialect = conn.dialect.name
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for partner, kind, points in conn.execute(_FLOWS, {"start": _stored(dialect, start),
                                                       "end": _stored(dialect, end)}):
        sums[str(partner)][str(kind)] += int(points or 0)
    return sums


def _partner_flows(sums: dict[str, dict[str, int]]) -> tuple[PartnerFlows, ...]:
    return tuple(PartnerFlows(
        partner_id=p,
        earned_points=sum(k.get(x, 0) for x in EARN_KINDS),
        burned_points=-sum(k.get(x, 0) for x in BURN_KINDS),
        returned_points=-k.get("return", 0),
        expired_points=-(k.get("expire", 0) + k.get("forfeit", 0)),
    ) for p, k in sorted(sums.items()))
