"""The expiry job an operator runs on a schedule: expire points, release lapsed holds and release
pending points past their return window for every member: the same housekeeping
(``plan_sweep``) each member's own writes do lazily, one transaction per member."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sqlalchemy import Connection, select, union

from gateway.db.tables import holds, lots
from gateway.db.uow import UnitOfWork
from gateway.ledger.context import LedgerContext
from gateway.ledger.housekeeping import sweep_member
from gateway.ledger.lot_repository import housekeeping_due
from gateway.ledger.runner import Tx, transact


def run_expiry(ctx: LedgerContext, progress: Callable[[int, int], None] | None = None) -> int:
    """Sweep every member with something expired; one transaction per member. Returns the
    number of operations written."""
    now = ctx.clock.now()
    with UnitOfWork(ctx.engine, write=False) as uow:
        due = sorted(set(uow.conn.execute(_DUE, {"now": now}).scalars()))
    written = 0
    for index, member_id in enumerate(due, start=1):
        written += transact(ctx.engine, partial(_sweep, ctx, member_id))
        if progress:
            progress(index, len(due))
    return written


def _sweep(ctx: LedgerContext, member_id: str, conn: Connection) -> int:
    tx = Tx.on(conn, ctx.clock.now())
    tx.ledger.lock_member(member_id)
    return sweep_member(tx, member_id)


_LOT_DUE, _HOLD_DUE = housekeeping_due("now")
_DUE = union(select(lots.c.member_id).where(_LOT_DUE), select(holds.c.member_id).where(_HOLD_DUE))
