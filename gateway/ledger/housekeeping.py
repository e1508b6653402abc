"""Lazy housekeeping run at the start of every write on a member, and by the jobs command:
pending points past their return window move to the wallet (repaying any debt first), expired
lots become breakage, expired holds go back to the wallet.

Doing it lazily inside the member's own write transaction means the wallet never offers points
that have already expired, even if the nightly job has not run yet."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import update

from gateway.db.tables import holds
from gateway.ledger.chart import AccountKind
from gateway.ledger.repository import LotTake
from gateway.ledger.runner import OperationRecord, Tx, operation_id, record_operation


def sweep_member(tx: Tx, member_id: str) -> int:
    """Release, expire and unhold what is due; returns the number of operations written."""
    if not tx.ledger.anything_due(member_id, tx.now):  # the common case: one statement
        return 0
    return (_release_pending(tx, member_id) + _release_expired_holds(tx, member_id)
            + _expire_lots(tx, member_id))


def _release_pending(tx: Tx, member_id: str) -> int:
    matured = tx.ledger.matured_pending_lots(member_id, tx.now)
    if not matured:
        return 0
    accounts = tx.ledger.member_accounts(member_id)
    by_origin: dict[str, int] = defaultdict(int)
    spendable = 0  # released points not already past their expiry: only these repay debt
    for _, origin, remaining, expired in matured:
        by_origin[origin] += remaining
        spendable += 0 if expired else remaining
    tx.ledger.release_lots([lot_id for lot_id, _, _, _ in matured])
    written, released_total, last_op = 0, 0, None
    for origin, points in sorted(by_origin.items()):
        if points == 0:  # fully returned while pending: nothing left to release
            continue
        op = last_op = operation_id()
        record_operation(tx, OperationRecord(id=op, partner_id=origin, member_id=member_id,
                         kind="release", points=points, result={"released": points}))
        tx.ledger.post(op, accounts[AccountKind.PENDING], accounts[AccountKind.WALLET], points,
                       tx.now)
        released_total += points
        written += 1
    debt = -tx.ledger.member_balances(member_id)[AccountKind.DEBT]
    repay = min(debt, spendable)
    if repay and last_op is not None:
        tx.ledger.post(last_op, accounts[AccountKind.WALLET], accounts[AccountKind.DEBT], repay,
                       tx.now)
        tx.ledger.take_from_lots(member_id, repay, last_op, tx.now)
    return written


def _expire_lots(tx: Tx, member_id: str) -> int:
    expired = tx.ledger.expired_lots(member_id, tx.now)
    if not expired:
        return 0
    by_origin: dict[str, list[LotTake]] = defaultdict(list)
    for lot_id, origin, remaining in expired:
        by_origin[origin].append(LotTake(lot_id, origin, -remaining))
    wallet = tx.ledger.member_accounts(member_id)[AccountKind.WALLET]
    breakage = tx.ledger.coalition_account(AccountKind.BREAKAGE)
    for origin, takes in sorted(by_origin.items()):
        points = -sum(t.points for t in takes)
        op = operation_id()
        record_operation(
            tx, OperationRecord(id=op, partner_id=origin, member_id=member_id, kind="expire",
            points=-points, result={"expired": points})
        )
        tx.ledger.post(op, wallet, breakage, points, tx.now)
        tx.ledger.record_lot_movements(takes, op, tx.now)
    return len(by_origin)


def _release_expired_holds(tx: Tx, member_id: str) -> int:
    rows = tx.ledger.expired_holds(member_id, tx.now)
    if not rows:
        return 0
    accounts = tx.ledger.member_accounts(member_id)
    for hold in rows:
        op = operation_id()
        record_operation(
            tx, OperationRecord(id=op, partner_id=hold.partner_id, member_id=member_id,
            kind="hold_expired", points=int(hold.points), result={"released": int(hold.points)},
            hold_id=hold.id, parent_id=hold.operation_id)
        )
        tx.ledger.post(op, accounts[AccountKind.HELD], accounts[AccountKind.WALLET],
                       int(hold.points), tx.now)
        restore = [LotTake(t.lot_id, t.origin_partner_id, -t.points)
                   for t in tx.ledger.lot_movements_of([hold.operation_id])]
        tx.ledger.record_lot_movements(restore, op, tx.now)
        tx.conn.execute(
            update(holds).where(holds.c.id == hold.id).values(status="expired")
        )
    return len(rows)
