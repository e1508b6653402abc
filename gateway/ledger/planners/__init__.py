"""The ledger's rules as pure functions: load -> **plan** -> apply.

A command loads a small state (the member's accounts and balances, the lots it may touch, the
rule in force, the purchase's history) in a few indexed reads; a planner here decides, from that
state alone, the answer, the transfers and the lot movements, as plain values; one apply step
(:func:`gateway.ledger.apply.apply`) writes them. Nothing here reads the database, the clock or
a random source (operation ids and 'now' come in as arguments), so the arithmetic and the order
of refusals have plain unit tests (tests/unit/test_planners.py) and the hypothesis properties
run on the planners directly.

One module per command family (earn, spend, holds, returns, sweep), the lot arithmetic they
share (lots) and the values in and out (state); everything is importable from here.

Each planner checks in result-code order (``gateway.ledger.precedence``): what it is given has
passed the request's own checks and found its member; it refuses on the rule's limits, then the
balance, then (for holds) the hold's state."""

from __future__ import annotations

from gateway.ledger.planners.earn import (
    EarnInput,
    plan_earn,
)
from gateway.ledger.planners.holds import (
    HoldInput,
    open_hold,
    plan_capture,
    plan_void,
)
from gateway.ledger.planners.lots import (
    apply_takes,
    restore_takes,
    take_lots,
)
from gateway.ledger.planners.returns import (
    ReferralReturnInput,
    ReturnInput,
    plan_referral_return,
    plan_refund_expiry,
    plan_return,
    refund_lots,
)
from gateway.ledger.planners.spend import (
    SpendInput,
    plan_authorise,
    plan_spend,
)
from gateway.ledger.planners.state import (
    HoldState,
    MemberState,
    Move,
    NewHold,
    NewLot,
    OpenLot,
    Plan,
    Posting,
)
from gateway.ledger.planners.sweep import (
    SweepState,
    plan_sweep,
    records_operation,
    swept,
)

__all__ = [
    "EarnInput",
    "HoldInput",
    "HoldState",
    "MemberState",
    "Move",
    "NewHold",
    "NewLot",
    "OpenLot",
    "Plan",
    "Posting",
    "ReferralReturnInput",
    "ReturnInput",
    "SpendInput",
    "SweepState",
    "apply_takes",
    "open_hold",
    "plan_authorise",
    "plan_capture",
    "plan_earn",
    "plan_referral_return",
    "plan_refund_expiry",
    "plan_return",
    "plan_spend",
    "plan_sweep",
    "plan_void",
    "records_operation",
    "refund_lots",
    "restore_takes",
    "swept",
    "take_lots",
]
