"""SQL for lots, the origin and expiry of every point: create, take and put back, release from
pending, and the lot movements operations made. Statements built once, at import (issue 11).
Nothing here commits.

:func:`housekeeping_due` is the one statement of what housekeeping acts on (the sweep's
conditions), used by every write's first check, the balance reads and the expiry job."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, insert, or_, select, update

from gateway.db.tables import holds, lot_movements, lots


@dataclass(frozen=True, slots=True)
class LotTake:
    """Points taken from (negative) or put back into (positive) one lot by one operation."""

    lot_id: int
    origin_partner_id: str
    points: int


def housekeeping_due(at: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """What :func:`gateway.ledger.planners.plan_sweep` acts on, as (lots, holds) conditions on
    the bound parameter named ``at``: a lot with points left that is released and past its
    expiry, or pending past its return window; an authorised hold past its expiry. A pending
    lot fully returned while pending has nothing left to release, so it is never due."""
    lot_due = and_(
        lots.c.remaining > 0,
        or_(and_(lots.c.pending == 0,
                 lots.c.expires_at <= bindparam(at, type_=lots.c.expires_at.type)),
            and_(lots.c.pending == 1,
                 lots.c.available_at <= bindparam(at, type_=lots.c.available_at.type))))
    hold_due = and_(holds.c.status == "authorised",
                    holds.c.expires_at <= bindparam(at, type_=holds.c.expires_at.type))
    return lot_due, hold_due


class LotRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create_lot(
        self,
        *,
        member_id: str,
        origin_partner_id: str,
        operation_id: str,
        points: int,
        earned_at: datetime,
        expires_at: datetime,
        available_at: datetime | None = None,
        merged_from: int | None = None,
    ) -> int:
        """A new lot; with ``available_at`` later than ``earned_at`` it starts pending."""
        result = self.conn.execute(_INSERT_LOT, _lot_values(
            member_id, origin_partner_id, operation_id, points, earned_at, expires_at,
            available_at, merged_from))
        return int(result.scalar_one())

    def add_lot(self, *, member_id: str, origin_partner_id: str, operation_id: str,
                points: int, earned_at: datetime, expires_at: datetime,
                available_at: datetime | None = None) -> None:
        """:meth:`create_lot` when the caller needs no id: nothing comes back, so on
        PostgreSQL the insert waits for the COMMIT's round trip (``gateway.db.pgfast``)."""
        self.conn.execute(_ADD_LOT, _lot_values(
            member_id, origin_partner_id, operation_id, points, earned_at, expires_at,
            available_at, None))

    def current_lots(self, lot_ids: Iterable[int]) -> dict[int, int]:
        """Each lot -> the lot that continues it now (the survivor's copy after any chain of
        merges; itself when never merged), so points once taken from it go back to the right
        wallet with the same origin and expiry."""
        current = {lot_id: lot_id for lot_id in lot_ids}
        frontier = set(current)
        while frontier:
            rows = self.conn.execute(select(lots.c.merged_from, lots.c.id)
                                     .where(lots.c.merged_from.in_(sorted(frontier)))).all()
            successor = {int(r[0]): int(r[1]) for r in rows}
            for lot_id, now in current.items():
                if now in successor:
                    current[lot_id] = successor[now]
            frontier = set(successor.values())
        return current

    def spendable_lots(self, member_id: str, at: datetime) -> list[tuple[int, str, int, datetime]]:
        """(id, origin, remaining, expires_at) of the member's unexpired, released lots with
        points left, soonest expiry first: what a spend may consume."""
        rows = self.conn.execute(_SPENDABLE_LOTS, {"member_id": member_id, "at": at}).all()
        return [(int(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows]

    def live_lots(self, member_ids: Sequence[str]
                  ) -> dict[str, list[tuple[int, str, int, datetime, bool, datetime]]]:
        """Member -> (id, origin, remaining, expires_at, pending, available_at) of every lot of
        theirs with points left (housekeeping's state): one statement for any number."""
        found: dict[str, list[tuple[int, str, int, datetime, bool, datetime]]] = defaultdict(list)
        for r in self.conn.execute(_LIVE_LOTS, {"members": list(member_ids)}).all():
            found[str(r[6])].append((int(r[0]), str(r[1]), int(r[2]), r[3], bool(r[4]), r[5]))
        return found

    def lots_by_id(self, lot_ids: Sequence[int]
                   ) -> list[tuple[int, str, int, datetime, bool, datetime]]:
        if not lot_ids:
            return []
        rows = self.conn.execute(_LOTS_BY_ID, {"lots": list(lot_ids)}).all()
        return [(int(r[0]), str(r[1]), int(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def record_lot_movements(
        self, moves: Sequence[LotTake], operation_id: str, at: datetime
    ) -> None:
        for move in moves:
            self.conn.execute(
                _INSERT_LOT_MOVEMENT,
                {"lot_id": move.lot_id, "operation_id": operation_id, "points": move.points,
                 "recorded_at": at},
            )
            self.conn.execute(_MOVE_LOT, {"lot_id": move.lot_id, "delta": move.points})

    def lot_movements_of(self, operation_ids: Sequence[str]) -> list[LotTake]:
        if not operation_ids:
            return []
        rows = self.conn.execute(_MOVEMENTS_OF, {"operations": list(operation_ids)}).all()
        return [LotTake(int(r[0]), str(r[1]), int(r[2])) for r in rows if int(r[2]) != 0]

    def lot_movements_by_operation(self, operation_ids: Sequence[str]
                                   ) -> dict[str, list[LotTake]]:
        """:meth:`lot_movements_of` for many operations at once, each on its own: one
        statement."""
        found: dict[str, list[LotTake]] = defaultdict(list)
        if not operation_ids:
            return found
        rows = self.conn.execute(_MOVEMENTS_BY_OPERATION,
                                 {"operations": list(operation_ids)}).all()
        for operation_id, lot_id, origin, points in rows:
            if int(points) != 0:
                found[str(operation_id)].append(LotTake(int(lot_id), str(origin), int(points)))
        return found

    def lot_restores_of(self, operation_ids: Sequence[str]) -> dict[int, int]:
        """Points these operations put back into each lot (positive movements only)."""
        if not operation_ids:
            return {}
        rows = self.conn.execute(_RESTORES_OF, {"operations": list(operation_ids)}).all()
        return {int(r[0]): int(r[1]) for r in rows}

    def earn_lots(self, operation_id: str) -> tuple[frozenset[int], tuple[int, int] | None]:
        """The lots an earn created (or the survivors' copies after merges) and (lot id,
        remaining) of the one still pending, if any: what a return takes back first."""
        own = self.conn.execute(_LOTS_OF_OPERATION, {"operation": operation_id}).scalars().all()
        current = sorted(set(self.current_lots(int(i) for i in own).values()))
        row = self.conn.execute(_PENDING_OF, {"lots": current}).first() if current else None
        return frozenset(current), None if row is None else (int(row[0]), int(row[1]))

    def release_lots(self, lot_ids: Sequence[int]) -> None:
        self.conn.execute(_RELEASE_LOTS, {"lots": list(lot_ids)})

    def expiring_points(self, member_id: str, start: datetime, end: datetime) -> int:
        total = self.conn.execute(
            select(func.coalesce(func.sum(lots.c.remaining), 0)).where(
                lots.c.member_id == member_id,
                lots.c.expires_at > start,
                lots.c.expires_at <= end,
            )
        ).scalar_one()
        return int(total)


_INSERT_LOT = insert(lots).returning(lots.c.id)
_ADD_LOT = insert(lots)
_SPENDABLE_LOTS = (
    select(lots.c.id, lots.c.origin_partner_id, lots.c.remaining, lots.c.expires_at)
    .where(lots.c.member_id == bindparam("member_id"), lots.c.remaining > 0,
           lots.c.expires_at > bindparam("at", type_=lots.c.expires_at.type), lots.c.pending == 0)
    .order_by(lots.c.expires_at, lots.c.id))
_LOT_COLUMNS = (lots.c.id, lots.c.origin_partner_id, lots.c.remaining, lots.c.expires_at,
                lots.c.pending, lots.c.available_at)
_LIVE_LOTS = (select(*_LOT_COLUMNS, lots.c.member_id)
              .where(lots.c.member_id.in_(bindparam("members", expanding=True)),
                     lots.c.remaining > 0)
              .order_by(lots.c.expires_at, lots.c.id))
_LOTS_BY_ID = select(*_LOT_COLUMNS).where(lots.c.id.in_(bindparam("lots", expanding=True)))
_LOTS_OF_OPERATION = select(lots.c.id).where(lots.c.operation_id == bindparam("operation"))
_PENDING_OF = (select(lots.c.id, lots.c.remaining)
               .where(lots.c.id.in_(bindparam("lots", expanding=True)), lots.c.pending == 1)
               .order_by(lots.c.id))
_INSERT_LOT_MOVEMENT = insert(lot_movements)
_MOVE_LOT = (update(lots).where(lots.c.id == bindparam("lot_id"))
             .values(remaining=lots.c.remaining + bindparam("delta")))
_MOVEMENTS_OF = (
    select(lot_movements.c.lot_id, lots.c.origin_partner_id, func.sum(lot_movements.c.points))
    .join(lots, lots.c.id == lot_movements.c.lot_id)
    .where(lot_movements.c.operation_id.in_(bindparam("operations", expanding=True)))
    .group_by(lot_movements.c.lot_id, lots.c.origin_partner_id, lots.c.expires_at)
    .order_by(lots.c.expires_at.desc(), lot_movements.c.lot_id.desc()))
_RESTORES_OF = (
    select(lot_movements.c.lot_id, func.sum(lot_movements.c.points))
    .where(lot_movements.c.operation_id.in_(bindparam("operations", expanding=True)),
           lot_movements.c.points > 0)
    .group_by(lot_movements.c.lot_id))
_RELEASE_LOTS = (update(lots).where(lots.c.id.in_(bindparam("lots", expanding=True)))
                 .values(pending=0))


_MOVEMENTS_BY_OPERATION = (
    select(lot_movements.c.operation_id, lot_movements.c.lot_id, lots.c.origin_partner_id,
           func.sum(lot_movements.c.points))
    .join(lots, lots.c.id == lot_movements.c.lot_id)
    .where(lot_movements.c.operation_id.in_(bindparam("operations", expanding=True)))
    .group_by(lot_movements.c.operation_id, lot_movements.c.lot_id, lots.c.origin_partner_id,
              lots.c.expires_at)
    .order_by(lot_movements.c.operation_id, lots.c.expires_at.desc(),
              lot_movements.c.lot_id.desc()))


def _lot_values(member_id: str, origin_partner_id: str, operation_id: str, points: int,
                earned_at: datetime, expires_at: datetime, available_at: datetime | None,
                merged_from: int | None) -> dict[str, Any]:
    pending = available_at is not None and available_at > earned_at
    return {"member_id": member_id, "origin_partner_id": origin_partner_id,
            "operation_id": operation_id, "points": points, "remaining": points,
            "earned_at": earned_at, "available_at": available_at or earned_at,
            "expires_at": expires_at, "pending": 1 if pending else 0,
            "merged_from": merged_from}
