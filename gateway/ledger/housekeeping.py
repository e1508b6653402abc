"""Lazy housekeeping run at the start of every write on a member, and by the expiry job:
pending points past their return window move to the wallet (repaying any debt first), lapsed
holds go back to the wallet, expired lots become breakage.

Doing it lazily inside the member's own write transaction means the wallet never offers points
that have already expired, even if the nightly job has not run yet. The rules are one planner,
:func:`gateway.ledger.planners.plan_sweep`; balance reads show its outcome without writing it
(``gateway.ledger.balances``)."""

from __future__ import annotations

from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.load import sweep_state
from gateway.ledger.planners import plan_sweep, records_operation
from gateway.ledger.runner import Tx, operation_id
from gateway.promotions import coupons


def sweep_member(tx: Tx, member_id: str) -> int:
    """Release, expire and unhold what is due; returns the number of operations written.
    The caller holds the member's lock already (every one does, the expiry job's ``_sweep``
    included), so a coupon a lapsed hold gives back is locked after the member, as the earn
    locks the coupons it is shown (lock order: purchase, member, coupons; decision 020)."""
    if not tx.ledger.anything_due(member_id, tx.now):  # the common case: one statement
        return 0
    return sweep_due(tx, member_id)


def sweep_due(tx: Tx, member_id: str) -> int:
    """:func:`sweep_member` once ``anything_due`` said yes (a caller that asked it itself,
    with its other reads in one round trip)."""
    state = sweep_state(tx, member_id, tx.now)
    breakage = tx.ledger.coalition_account(AccountKind.BREAKAGE)
    postings = plan_sweep(state, tx.now, breakage, iter(operation_id, None))
    apply(tx, postings)
    for posting in postings:
        record = posting.record
        if record is not None and record.kind == "hold_expired" and record.parent_id:
            # A lapsed hold gives back the coupon its authorisation used, as a void does.
            coupons.restore(tx.conn, record.parent_id, record.id, tx.now)
    return sum(1 for posting in postings if records_operation(posting))
