"""The order in which a points command's result codes win, stated once.

A request can be wrong in several ways at once (an unknown customer *and* a zero amount); the
partner must get the same answer whichever command it sent and whichever check happens to run
first in the code. So the order lives here, as one tuple, and every command follows it:

1. the request itself, checked without I/O when the command is built (``validate_*``): every
   check runs and :func:`first_failure` raises the one that ranks first;
2. the till's budget for typed store codes (RATE_LIMITED), the first I/O;
3. the idempotency key (a replay or a reused key), inside the transaction, before anything else;
4. what the request refers to, the rule in force, the purchase's history, the rule's limits
   and the balance, and last the hold's state: the planners check them in this order.

Codes separated by "/" in ``gateway.ledger``'s docstring share a level; the tuple breaks the
tie in the order listed. Tests pin every adjacent pair through the real commands
(tests/integration/test_result_order.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gateway.core.errors import DomainError, ErrorCode

T = TypeVar("T")

RESULT_ORDER: tuple[ErrorCode, ...] = (
    # the request itself; a card number that would spend is refused whatever else is wrong
    ErrorCode.CONSENT_REQUIRED,
    ErrorCode.INVALID_INPUT,
    ErrorCode.INVALID_AMOUNT,
    ErrorCode.CURRENCY_MISMATCH,
    # the till's budget, then the key
    ErrorCode.RATE_LIMITED,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    # what it refers to
    ErrorCode.UNKNOWN_MEMBER,
    ErrorCode.NOT_FOUND,
    # the rule in force, the purchase's history
    ErrorCode.RULE_NOT_IN_FORCE,
    ErrorCode.PURCHASE_ALREADY_RECORDED,
    ErrorCode.NOTHING_TO_RETURN,
    # the rule's limits and the balance
    ErrorCode.REDEMPTION_NOT_ACCEPTED,
    ErrorCode.CAP_EXCEEDED,
    ErrorCode.INSUFFICIENT_POINTS,
    # the hold's state
    ErrorCode.HOLD_ALREADY_SETTLED,
    ErrorCode.HOLD_EXPIRED,
    ErrorCode.CAPTURE_EXCEEDS_HOLD,
)
_RANK = {code: rank for rank, code in enumerate(RESULT_ORDER)}


def precedence(code: str) -> int:
    """The rank of a result code: lower wins. A code outside the list ranks after all."""
    return _RANK.get(ErrorCode(code), len(RESULT_ORDER))


class Checks:
    """Pure checks of one request, all run; :meth:`raise_first` raises the failure that ranks
    first (the earliest check breaks a tie). Checks must do no I/O."""

    def __init__(self) -> None:
        self.failures: list[DomainError] = []

    def run(self, check: Callable[[], T]) -> T | None:
        try:
            return check()
        except DomainError as failure:
            self.failures.append(failure)
            return None

    def raise_first(self) -> None:
        if self.failures:
            raise min(self.failures, key=lambda failure: precedence(failure.code))


def first_failure(*checks: Callable[[], object]) -> None:
    """Run every check; raise the failure that ranks first (see :class:`Checks`)."""
    found = Checks()
    for check in checks:
        found.run(check)
    found.raise_first()
