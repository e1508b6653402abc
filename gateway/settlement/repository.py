"""SQL for settlement: grouped flows out of the ledger, and the closed-period tables.

Every report query is a GROUP BY in the database over one period's operations (found through
``ix_operations_recorded``); Python sees only the grouped rows, a few per partner, rule version
and closed period, streamed. Nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    func,
    insert,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
)

from gateway.db.tables import (
    SETTLED_LOT_KINDS,
    accounts,
    lot_movements,
    lots,
    operations,
    partners,
    settlement_periods,
    settlement_rollup_days,
    settlement_rollups,
    settlement_snapshots,
    transfers,
)
from gateway.settlement.model import ClosedPeriod, Period


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    """A partner or coalition account (member accounts are never settled one by one)."""

    partner_id: str | None
    kind: str


@dataclass(frozen=True, slots=True)
class FlowRow:
    """Points moved between a settled account and member accounts by one operation kind, for
    one partner, price key and closed period adjusted (``None``: the period proper). ``side``:
    ``+id`` the settled account was debited, ``-id`` credited, ``None`` both sides were settled
    accounts (which no operation may do)."""

    side: int | None
    kind: str
    partner_id: str
    rule_partner_id: str | None
    rule_version: int | None
    adjusts: str | None
    points: int


@dataclass(frozen=True, slots=True)
class LotRow:
    """Lot points moved by redemptions (negative: consumed) or refunds (positive: restored)."""

    origin: str
    redeemer: str
    kind: str
    rule_partner_id: str | None
    rule_version: int | None
    adjusts: str | None
    points: int


class SettlementRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def partners(self) -> list[tuple[str, str, str]]:
        rows = self.conn.execute(
            select(partners.c.id, partners.c.name, partners.c.kind).order_by(partners.c.id))
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def settled_accounts(self) -> dict[int, LedgerAccount]:
        rows = self.conn.execute(select(accounts.c.id, accounts.c.partner_id, accounts.c.kind)
                                 .where(accounts.c.member_id.is_(None)))
        return {int(r[0]): LedgerAccount(r[1], str(r[2])) for r in rows}

    def flows(self, period: Period, account_ids: list[int],
              closed: list[ClosedPeriod]) -> Iterator[FlowRow]:
        for _, row in self._flows(period, account_ids, closed, by_day=False):
            yield row

    def flows_by_day(self, period: Period, account_ids: list[int],
                     closed: list[ClosedPeriod]) -> Iterator[tuple[date, FlowRow]]:
        """``flows`` grouped by the UTC day of ``recorded_at`` too (the day rollups: one
        pass over all the days to store, not one per day)."""
        for day, row in self._flows(period, account_ids, closed, by_day=True):
            yield _day(day), row

    def _flows(self, period: Period, account_ids: list[int], closed: list[ClosedPeriod],
               *, by_day: bool) -> Iterator[tuple[Any, FlowRow]]:
        """The period's transfers, grouped by the settled account they touch: one pass over the
        period's operations (``ix_operations_recorded``), each joined to its transfers, except
        the operations priced at their parent's rule version (returns; an earn always carries
        its own), which a small pass over ``ix_operations_settled_lots`` joins to the parent.

        The settled side is one integer key (SQLite's GROUP BY sorts every row, and a short key
        sorts fastest): ``+id`` a settled debit, ``-id`` a settled credit, ``0`` a transfer
        between two member accounts (a hold; not settled), NULL both sides settled (which
        ``build_report`` refuses). The transfer count never reaches Python."""
        o = operations.alias("o")
        d, c = transfers.c.debit_account_id, transfers.c.credit_account_id
        side = case((d.in_(account_ids), case((c.in_(account_ids), null()), else_=d)),
                    (c.in_(account_ids), -c), else_=literal(0))
        adjusts = _adjusted(o, period, closed)
        in_period = (o.c.recorded_at >= period.start, o.c.recorded_at < period.end)
        inherits = and_(_not_earn(o), o.c.rule_version.is_(None), o.c.parent_id.is_not(None))
        day = (func.date(o.c.recorded_at),) if by_day else ()
        keys = (side, o.c.kind, o.c.partner_id, o.c.rule_partner_id, o.c.rule_version, adjusts,
                *day)
        own = (
            select(*keys, func.sum(transfers.c.amount))
            .select_from(o.join(transfers, transfers.c.operation_id == o.c.id))
            .where(*in_period, not_(inherits))
            .group_by(*_positions(keys))
        )
        # A return has no version of its own: it prices at its earn's. Those few operations
        # are found through the partial index and joined to their parent, so the big pass has
        # no per-row lookup (and stays parallel-safe on PostgreSQL).
        parent = operations.alias("parent")
        parent_keys = (side, o.c.kind, o.c.partner_id, parent.c.rule_partner_id,
                       parent.c.rule_version, adjusts, *day)
        inherited = (
            select(*parent_keys, func.sum(transfers.c.amount))
            .select_from(o.join(transfers, transfers.c.operation_id == o.c.id)
                         .join(parent, parent.c.id == o.c.parent_id))
            .where(*in_period, inherits)
            .group_by(*_positions(parent_keys))
        )
        for stmt in (own, inherited):
            for r in self._stream(stmt):
                if r[0] == 0:
                    continue
                yield (r[6] if by_day else None,
                       FlowRow(_int(r[0]), str(r[1]), str(r[2]), r[3], _int(r[4]), r[5],
                               int(r[-1])))

    def redemption_lots(self, period: Period, closed: list[ClosedPeriod]) -> Iterator[LotRow]:
        for _, row in self._redemption_lots(period, closed, by_day=False):
            yield row

    def redemption_lots_by_day(self, period: Period,
                               closed: list[ClosedPeriod]) -> Iterator[tuple[date, LotRow]]:
        for day, row in self._redemption_lots(period, closed, by_day=True):
            yield _day(day), row

    def _redemption_lots(self, period: Period, closed: list[ClosedPeriod], *,
                         by_day: bool) -> Iterator[tuple[Any, LotRow]]:
        """Lot movements of redemptions by origin: redeems, donations (a member's redemption at a
        charity), captures (what stays captured: the authorisation's takes plus the capture's
        own give-backs) and refunds in returns. A merge's lot movements are not here: it moves
        lots between two members, and its transfers touch no settled account.

        Both statements read only the period's operations other than earns, through the partial
        index ``ix_operations_settled_lots`` (earns, the bulk of the table, are not in it)."""
        o = operations.alias("o")
        parent = operations.alias("parent")  # a return prices at its earn's version
        keys = (lots.c.origin_partner_id, o.c.partner_id, o.c.kind,
                func.coalesce(o.c.rule_partner_id, parent.c.rule_partner_id),
                func.coalesce(o.c.rule_version, parent.c.rule_version),
                _adjusted(o, period, closed),
                *((func.date(o.c.recorded_at),) if by_day else ()))
        own = (
            select(*keys, func.sum(lot_movements.c.points))
            .select_from(
                o.join(lot_movements, lot_movements.c.operation_id == o.c.id)
                .join(lots, lots.c.id == lot_movements.c.lot_id)
                .outerjoin(parent, and_(o.c.rule_version.is_(None),
                                        parent.c.id == o.c.parent_id)))
            .where(_lot_kinds(o), o.c.recorded_at >= period.start,
                   o.c.recorded_at < period.end,
                   or_(o.c.kind != "return", lot_movements.c.points > 0))
            .group_by(*_positions(keys))
        )
        capture = operations.alias("capture")
        held_keys = (lots.c.origin_partner_id, capture.c.partner_id, capture.c.kind,
                     capture.c.rule_partner_id, capture.c.rule_version,
                     _adjusted(capture, period, closed),
                     *((func.date(capture.c.recorded_at),) if by_day else ()))
        held = (
            select(*held_keys, func.sum(lot_movements.c.points))
            .select_from(
                capture.join(lot_movements, lot_movements.c.operation_id == capture.c.parent_id)
                .join(lots, lots.c.id == lot_movements.c.lot_id))
            .where(_lot_kinds(capture), capture.c.kind == "capture",
                   capture.c.recorded_at >= period.start, capture.c.recorded_at < period.end)
            .group_by(*_positions(held_keys))
        )
        for stmt in (own, held):
            for r in self._stream(stmt):
                yield (r[6] if by_day else None,
                       LotRow(str(r[0]), str(r[1]), str(r[2]), r[3], _int(r[4]), r[5],
                              int(r[-1])))

    # --- per-day rollups (decision 016) -------------------------------------------------------
    def rolled_days(self, first: date, last: date) -> set[date]:
        """The days in ``[first, last)`` whose sums are stored (a primary-key range)."""
        d = settlement_rollup_days.c.day
        return {_day(r[0]) for r in self.conn.execute(
            select(d).where(d >= first, d < last))}

    def insert_day(self, day: date, rolled_at: datetime, flows: list[FlowRow],
                   lots: list[LotRow]) -> None:
        """Store one day's grouped sums and its marker (the marker first: the sums name it)."""
        self.conn.execute(insert(settlement_rollup_days), {
            "day": day, "rolled_at": rolled_at, "row_count": len(flows) + len(lots)})
        rows = [{"day": day, "seq": n, "part": "flow", "side": f.side, "kind": f.kind,
                 "partner_id": f.partner_id, "origin": None,
                 "rule_partner_id": f.rule_partner_id, "rule_version": f.rule_version,
                 "adjusts": f.adjusts, "points": f.points} for n, f in enumerate(flows)]
        rows += [{"day": day, "seq": len(flows) + n, "part": "lot", "side": None,
                  "kind": lt.kind, "partner_id": lt.redeemer, "origin": lt.origin,
                  "rule_partner_id": lt.rule_partner_id, "rule_version": lt.rule_version,
                  "adjusts": lt.adjusts, "points": lt.points} for n, lt in enumerate(lots)]
        if rows:
            self.conn.execute(insert(settlement_rollups), rows)

    def rolled_sums(self, first: date, last: date) -> tuple[list[FlowRow], list[LotRow]]:
        """The stored sums of the rolled days in ``[first, last)``, added up per key in SQL
        (one range read of the rollup table: a few rows per partner, kind and rule version)."""
        r = settlement_rollups.c
        keys = (r.part, r.side, r.kind, r.partner_id, r.origin, r.rule_partner_id,
                r.rule_version, r.adjusts)
        rows = self.conn.execute(select(*keys, func.sum(r.points))
                                 .where(r.day >= first, r.day < last)
                                 .group_by(*_positions(keys)))
        return _split(rows)

    def day_sums(self, day: date) -> tuple[int, list[FlowRow], list[LotRow]] | None:
        """One rolled day as stored: its marker's row count and its rows (``verify``)."""
        count = self.conn.execute(select(settlement_rollup_days.c.row_count)
                                  .where(settlement_rollup_days.c.day == day)).scalar()
        if count is None:
            return None
        r = settlement_rollups.c
        flows, lots = _split(self.conn.execute(
            select(r.part, r.side, r.kind, r.partner_id, r.origin, r.rule_partner_id,
                   r.rule_version, r.adjusts, r.points).where(r.day == day)))
        return int(count), flows, lots

    def all_rolled_days(self) -> list[date]:
        d = settlement_rollup_days.c.day
        return [_day(r[0]) for r in self.conn.execute(select(d).order_by(d))]

    # --- closed periods ---------------------------------------------------------------------
    def closed_periods(self) -> list[ClosedPeriod]:
        rows = self.conn.execute(select(settlement_periods)
                                 .order_by(settlement_periods.c.start_at))
        return [ClosedPeriod(r.id, Period.stored(r.start_at, r.end_at), r.closed_at, r.closed_by,
                             r.sha256) for r in rows]

    def closed_snapshot(self, period: Period) -> tuple[str, str] | None:
        """The stored body and hash of ``period`` if it is closed with exactly these bounds: two
        primary-key and unique-index lookups, whatever the size of the ledger."""
        row = self.conn.execute(
            select(settlement_snapshots.c.body, settlement_snapshots.c.sha256)
            .select_from(settlement_periods.join(
                settlement_snapshots, settlement_snapshots.c.period_id == settlement_periods.c.id))
            .where(settlement_periods.c.start_at == period.start,
                   settlement_periods.c.end_at == period.end)).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def snapshot(self, period_id: str) -> tuple[str, str] | None:
        row = self.conn.execute(
            select(settlement_snapshots.c.body, settlement_snapshots.c.sha256)
            .where(settlement_snapshots.c.period_id == period_id)).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def insert_closed(self, closed: ClosedPeriod, body: str) -> None:
        self.conn.execute(insert(settlement_periods), {
            "id": closed.id, "start_at": closed.period.start, "end_at": closed.period.end,
            "closed_at": closed.closed_at, "closed_by": closed.closed_by,
            "sha256": closed.sha256})
        self.conn.execute(insert(settlement_snapshots), {
            "period_id": closed.id, "body": body, "sha256": closed.sha256,
            "created_at": closed.closed_at})

    def _stream(self, stmt: Any) -> Iterator[Any]:
        # Options on the statement: ``Connection.execution_options`` would change the
        # connection in place, and a close's INSERTs after the report would then be sent as
        # server-side cursors (PostgreSQL: "DECLARE … CURSOR FOR INSERT", a syntax error).
        yield from self.conn.execute(stmt.execution_options(stream_results=True, yield_per=1000))


def _adjusted(o: Any, period: Period, closed: list[ClosedPeriod]) -> Any:
    """The closed period an operation occurred in, when it was recorded after that close (an
    adjustment), else NULL. A CASE over the closed periods that could hold one (closed before
    ``period`` ends), not a join: an operation on time fails the first test and costs one
    comparison. Closed periods never overlap, so at most one branch matches."""
    late = [c for c in closed if c.closed_at < period.end]
    if not late:
        return null()
    at = o.c.occurred_at
    stamp = o.c.occurred_at.type

    def bound(value: datetime) -> Any:
        return literal(value, stamp)

    branches: list[tuple[Any, Any]] = [(at >= bound(max(c.period.end for c in late)), null())]
    branches += [(and_(at >= bound(c.period.start), at < bound(c.period.end),
                       o.c.recorded_at >= bound(c.closed_at)), literal(c.id)) for c in late]
    return case(*branches, else_=null())


def _not_earn(o: Any) -> Any:
    """``kind <> 'earn'`` written exactly as the partial index ``ix_operations_settled_lots``
    states it (a literal, not a parameter), so SQLite and PostgreSQL can prove the index covers
    the query."""
    return o.c.kind != literal_column("'earn'")


def _lot_kinds(o: Any) -> Any:
    return and_(_not_earn(o), o.c.kind.in_(SETTLED_LOT_KINDS))


def _positions(keys: tuple[Any, ...]) -> list[Any]:
    """``GROUP BY 1, 2, …``: the grouped expressions (CASEs, the price key's subqueries) are
    evaluated once per row for the select list, not a second time for the GROUP BY."""
    return [literal_column(str(n)) for n in range(1, len(keys) + 1)]


def _split(rows: Iterable[Any]) -> tuple[list[FlowRow], list[LotRow]]:
    flows: list[FlowRow] = []
    lots: list[LotRow] = []
    for part, side, kind, partner, origin, rule_partner, version, adjusts, points in rows:
        if part == "flow":
            flows.append(FlowRow(_int(side), str(kind), str(partner), rule_partner,
                                 _int(version), adjusts, int(points)))
        else:
            lots.append(LotRow(str(origin), str(partner), str(kind), rule_partner,
                               _int(version), adjusts, int(points)))
    return flows, lots


def _day(value: Any) -> date:
    """A ``Date`` column as read back (SQLite's driver may hand back the ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
