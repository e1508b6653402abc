"""Lots, pure: which lots a spend takes (soonest expiry first) and where points put back go."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import datetime

from gateway.ledger.lot_repository import LotTake
from gateway.ledger.planners.state import OpenLot


def take_lots(lots: Iterable[OpenLot], points: int, at: datetime,
              prefer: Collection[int] = ()) -> tuple[LotTake, ...]:
    """Consume ``points`` from spendable lots, soonest expiry first (the lots in ``prefer``
    first, so a return takes back the very points it earned)."""
    spendable = sorted((lot for lot in lots
                        if lot.remaining > 0 and not lot.pending and lot.expires_at > at),
                       key=lambda lot: (lot.id not in prefer, lot.expires_at, lot.id))
    takes: list[LotTake] = []
    left = points
    for lot in spendable:
        if left == 0:
            break
        take = min(left, lot.remaining)
        takes.append(LotTake(lot.id, lot.origin_partner_id, -take))
        left -= take
    if left:
        raise RuntimeError(f"lots short by {left}: wallet and lots disagree")
    return tuple(takes)


def restore_takes(takes: Iterable[LotTake], points: int) -> tuple[LotTake, ...]:
    """Put ``points`` back into the lots ``takes`` consumed, in their order (a hold's lots come
    latest expiry first, so what stays captured is what would have expired soonest)."""
    restores: list[LotTake] = []
    left = points
    for take in takes:
        back = min(left, -take.points)
        if back > 0:
            restores.append(LotTake(take.lot_id, take.origin_partner_id, back))
            left -= back
    return tuple(restores)


def apply_takes(lots: dict[int, OpenLot], takes: Iterable[LotTake]) -> None:
    for take in takes:
        lot = lots[take.lot_id]
        lots[take.lot_id] = replace(lot, remaining=lot.remaining + take.points)
