"""SQL for holds: find one (another partner's hold reads exactly like a missing one), place,
settle, and the member's lapsed holds with the lot movements their authorisations made.
Statements built once, at import (issue 11). Nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from gateway.db.tables import holds
from gateway.ledger.lot_repository import LotRepository
from gateway.ledger.planners import HoldState, NewHold


class HoldRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def member_of(self, partner_id: str, hold_id: str) -> str | None:
        """The member whose points the hold holds, if it is this partner's hold."""
        found = self.conn.execute(_HOLD_MEMBER, {"hold_id": hold_id,
                                                 "partner_id": partner_id}).scalar()
        return None if found is None else str(found)

    def get(self, partner_id: str, hold_id: str) -> HoldState:
        """The hold, without its lot movements. Read under the member's lock: every change of
        a hold's status happens under it."""
        row = self.conn.execute(_HOLD, {"hold_id": hold_id, "partner_id": partner_id}).one()
        return _state(row)

    def with_takes(self, hold: HoldState) -> HoldState:
        """The hold with its authorisation's lot movements, latest expiry first."""
        takes = LotRepository(self.conn).lot_movements_of([hold.operation_id])
        return replace(hold, takes=tuple(takes))

    def lapsed(self, member_ids: Sequence[str], at: datetime) -> list[HoldState]:
        """The members' authorised holds past their expiry, each with its authorisation's lot
        movements: two statements whatever their number."""
        lapsed = [_state(row) for row in self.conn.execute(
            _EXPIRED_HOLDS, {"members": list(member_ids), "at": at}).all()]
        takes = LotRepository(self.conn).lot_movements_by_operation(
            [hold.operation_id for hold in lapsed])
        return [replace(hold, takes=tuple(takes.get(hold.operation_id, ())))
                for hold in lapsed]

    def insert(self, hold: NewHold, operation_id: str, now: datetime) -> None:
        self.conn.execute(_INSERT_HOLD, {
            "id": hold.id, "partner_id": hold.partner_id, "member_id": hold.member_id,
            "operation_id": operation_id, "points": hold.points,
            "basket_amount_minor": hold.basket_amount_minor, "purchase_id": hold.purchase_id,
            "status": "authorised", "captured_points": 0, "expires_at": hold.expires_at,
            "created_at": now,
        })

    def settle(self, hold_id: str, status: str, captured: int) -> None:
        self.conn.execute(_SETTLE, {"hold_id": hold_id, "status": status,
                                    "captured": captured})


def _state(row: object) -> HoldState:
    # ``_asdict`` exists on SQLAlchemy's Row and on the raw driver's rows (gateway.db.fast).
    r = row._asdict()  # type: ignore[attr-defined]
    return HoldState(
        id=str(r["id"]), partner_id=str(r["partner_id"]), member_id=str(r["member_id"]),
        operation_id=str(r["operation_id"]), points=int(r["points"]),
        basket_amount_minor=int(r["basket_amount_minor"]), purchase_id=r["purchase_id"],
        status=str(r["status"]), expires_at=r["expires_at"], created_at=r["created_at"],
    )


_INSERT_HOLD = holds.insert()
_HOLD_MEMBER = select(holds.c.member_id).where(
    holds.c.id == bindparam("hold_id"), holds.c.partner_id == bindparam("partner_id"))
_HOLD = select(holds).where(
    holds.c.id == bindparam("hold_id"), holds.c.partner_id == bindparam("partner_id"))
_EXPIRED_HOLDS = select(holds).where(
    holds.c.member_id.in_(bindparam("members", expanding=True)), holds.c.status == "authorised",
    holds.c.expires_at <= bindparam("at", type_=holds.c.expires_at.type))
_SETTLE = (update(holds).where(holds.c.id == bindparam("hold_id"))
           .values(status=bindparam("status"), captured_points=bindparam("captured")))
