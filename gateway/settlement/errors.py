"""Settlement's branch of the error tree (``gateway.core.errors``), with stable codes.

::

    Conflict
    └── PeriodClosed             PERIOD_CLOSED          closing again, or overlapping one
    Rejected
    └── SettlementUnbalanced     SETTLEMENT_UNBALANCED  the report would not balance; not output
    InvalidInput
    └── StatementMalformed       STATEMENT_MALFORMED    a CSV statement with a bad line or column
"""

from __future__ import annotations

from gateway.core.errors import Conflict, ErrorCode, InvalidInput, Rejected


class PeriodClosed(Conflict):
    code = ErrorCode.PERIOD_CLOSED

    def __init__(self, message: str, *, period_id: str) -> None:
        super().__init__(message, field="start")
        self.period_id = period_id


class SettlementUnbalanced(Rejected):
    """The data cannot be settled exactly (a check failed); the report is refused, not output."""

    code = ErrorCode.SETTLEMENT_UNBALANCED


class StatementMalformed(InvalidInput):
    code = ErrorCode.STATEMENT_MALFORMED

    def __init__(self, message: str, *, line: int, column: str | None) -> None:
        where = f"line {line}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}", field="csv")
        self.line = line
        self.column = column
