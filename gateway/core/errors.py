"""The one error tree. Every expected failure is a :class:`DomainError` with a stable ``code``.

The GraphQL layer maps each class to a typed union member implementing ``Error {code, message,
field}``; anything that is not a ``DomainError`` is a bug and is masked. Messages say the cause
and name the input field, so a partner's developer can fix the call without reading our code.

::

    DomainError
    ├── InvalidInput                 INVALID_INPUT        malformed or out-of-range input
    │   ├── InvalidAmount            INVALID_AMOUNT       zero/negative/oversized points or money
    │   └── CurrencyMismatch         CURRENCY_MISMATCH    money not in the partner's currency
    ├── NotFound                     NOT_FOUND            missing, or another partner's
    │   └── UnknownMember            UNKNOWN_MEMBER       customer id not linked at this partner
    ├── Conflict                     CONFLICT
    │   ├── AlreadyLinked            ALREADY_LINKED       customer id already linked to a member
    │   ├── IdempotencyKeyReused     IDEMPOTENCY_KEY_REUSED  same key, different request
    │   ├── HoldExpired              HOLD_EXPIRED
    │   ├── HoldAlreadySettled       HOLD_ALREADY_SETTLED captured or voided already
    │   └── PurchaseAlreadyRecorded  PURCHASE_ALREADY_RECORDED  purchase earned before
    ├── Rejected                     REJECTED             business rule says no
    │   ├── InsufficientPoints       INSUFFICIENT_POINTS
    │   ├── CaptureExceedsHold       CAPTURE_EXCEEDS_HOLD  more than the hold holds
    │   ├── RuleNotInForce           RULE_NOT_IN_FORCE    no rule version covers the time
    │   ├── CapExceeded              CAP_EXCEEDED         a cap leaves nothing to post
    │   ├── RedemptionNotAccepted    REDEMPTION_NOT_ACCEPTED  partner takes no points
    │   ├── NothingToReturn          NOTHING_TO_RETURN    purchase already fully returned
    │   ├── ConsentRequired          CONSENT_REQUIRED     a card number may earn, never spend
    │   ├── FundingLimitReached      FUNDING_LIMIT_REACHED  a funder's funding is used up
    │   └── ReferralRefused          REFERRAL_REFUSED     unknown referral code
    │       ├── SelfReferral         SELF_REFERRAL        the same person (merges included)
    │       └── AlreadyReferred      ALREADY_REFERRED     a member is referred once
    │   ├── DrawNotOpen              DRAW_NOT_OPEN        a draw takes no entries yet
    │   │   └── DrawClosed           DRAW_CLOSED          ... or any more (closed)
    │   └── DrawEntryLimit           DRAW_ENTRY_LIMIT     over the per-member entry limit
    │   (Conflict) DrawStillOpen     DRAW_STILL_OPEN      closing a draw before its close time
    ├── Forbidden                    FORBIDDEN            token lacks the scope named
    │   (settlement adds, in gateway/settlement/errors.py: PeriodClosed(Conflict) PERIOD_CLOSED,
    │    SettlementUnbalanced SETTLEMENT_UNBALANCED, StatementMalformed(InvalidInput)
    │    STATEMENT_MALFORMED)
    └── RateLimited                  RATE_LIMITED
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorCode(enum.StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN_MEMBER = "UNKNOWN_MEMBER"
    CONFLICT = "CONFLICT"
    ALREADY_LINKED = "ALREADY_LINKED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    HOLD_ALREADY_SETTLED = "HOLD_ALREADY_SETTLED"
    PURCHASE_ALREADY_RECORDED = "PURCHASE_ALREADY_RECORDED"
    REJECTED = "REJECTED"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    CAPTURE_EXCEEDS_HOLD = "CAPTURE_EXCEEDS_HOLD"
    RULE_NOT_IN_FORCE = "RULE_NOT_IN_FORCE"
    CAP_EXCEEDED = "CAP_EXCEEDED"
    REDEMPTION_NOT_ACCEPTED = "REDEMPTION_NOT_ACCEPTED"
    NOTHING_TO_RETURN = "NOTHING_TO_RETURN"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    PERIOD_CLOSED = "PERIOD_CLOSED"
    SETTLEMENT_UNBALANCED = "SETTLEMENT_UNBALANCED"
    STATEMENT_MALFORMED = "STATEMENT_MALFORMED"
    FUNDING_LIMIT_REACHED = "FUNDING_LIMIT_REACHED"
    CAMPAIGN_EXISTS = "CAMPAIGN_EXISTS"
    REFERRAL_REFUSED = "REFERRAL_REFUSED"
    SELF_REFERRAL = "SELF_REFERRAL"
    ALREADY_REFERRED = "ALREADY_REFERRED"
    DRAW_NOT_OPEN = "DRAW_NOT_OPEN"
    DRAW_CLOSED = "DRAW_CLOSED"
    DRAW_ENTRY_LIMIT = "DRAW_ENTRY_LIMIT"
    DRAW_STILL_OPEN = "DRAW_STILL_OPEN"
    CHALLENGE_STARTED = "CHALLENGE_STARTED"


class DomainError(Exception):
    """An expected failure with a stable code; ``field`` names the input at fault, if one is."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class InvalidAmount(InvalidInput):
    code = ErrorCode.INVALID_AMOUNT


class CurrencyMismatch(InvalidInput):
    code = ErrorCode.CURRENCY_MISMATCH

    def __init__(self, *, expected: str, got: str, field: str) -> None:
        super().__init__(
            f"this partner trades in {expected}; {field} is in {got}", field=field
        )
        self.expected = expected
        self.got = got


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class UnknownMember(NotFound):
    code = ErrorCode.UNKNOWN_MEMBER


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class AlreadyLinked(Conflict):
    code = ErrorCode.ALREADY_LINKED


class IdempotencyKeyReused(Conflict):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request; "
            "use a new key for a new operation",
            field="idempotencyKey",
        )


class HoldExpired(Conflict):
    code = ErrorCode.HOLD_EXPIRED


class HoldAlreadySettled(Conflict):
    code = ErrorCode.HOLD_ALREADY_SETTLED


class PurchaseAlreadyRecorded(Conflict):
    code = ErrorCode.PURCHASE_ALREADY_RECORDED


class Rejected(DomainError):
    code = ErrorCode.REJECTED


class InsufficientPoints(Rejected):
    code = ErrorCode.INSUFFICIENT_POINTS

    def __init__(self, *, requested: int, available: int, field: str = "points") -> None:
        super().__init__(
            f"the member has {available} points available; {requested} were requested",
            field=field,
        )
        self.requested = requested
        self.available = available


class CaptureExceedsHold(Rejected):
    """A capture asked for more points than the hold holds (the wallet is not consulted: the
    held points are all a capture can take)."""

    code = ErrorCode.CAPTURE_EXCEEDS_HOLD

    def __init__(self, *, requested: int, held: int, field: str = "points") -> None:
        super().__init__(f"the hold holds {held} points; {requested} cannot be captured from it",
                         field=field)
        self.requested = requested
        self.held = held


class RuleNotInForce(Rejected):
    code = ErrorCode.RULE_NOT_IN_FORCE


class CapExceeded(Rejected):
    code = ErrorCode.CAP_EXCEEDED

    def __init__(self, message: str, *, cap: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.cap = cap


class RedemptionNotAccepted(Rejected):
    code = ErrorCode.REDEMPTION_NOT_ACCEPTED


class NothingToReturn(Rejected):
    code = ErrorCode.NOTHING_TO_RETURN


class ConsentRequired(Rejected):
    """Spending needs the member's consent: a consented link or a store code they showed."""

    code = ErrorCode.CONSENT_REQUIRED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN

    def __init__(self, scope: str, message: str | None = None) -> None:
        scope = str(scope)  # a scope enum member reads as its wire string, in the message too
        super().__init__(message or f"this token lacks the scope {scope!r} that this field needs")
        self.scope = scope


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limit reached; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class FundingLimitReached(Rejected):
    """Issue 12: a funder with the ``refuse`` policy has no headroom left for these points."""

    code = ErrorCode.FUNDING_LIMIT_REACHED

    def __init__(self, funder: str, points: int, left_points: int) -> None:
        super().__init__(
            f"funder {funder!r} has {max(left_points, 0)} points of funding left and this "
            f"operation needs {points}; finance must top it up or raise its limit",
            field="funder")
        self.funder = funder
        self.points = points
        self.left_points = left_points


class CampaignExists(Conflict):
    """createCampaign with an id the partner already used for a different definition (the same
    definition again is a retry and answers the stored version 1)."""

    code = ErrorCode.CAMPAIGN_EXISTS

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id!r} already exists with another definition: "
                         "change it with publishCampaignVersion", field="id")


class ReferralRefused(Rejected):
    """Issue 12 (decision 025): a referral code that names no member."""

    code = ErrorCode.REFERRAL_REFUSED


class SelfReferral(ReferralRefused):
    """The referrer and the referred member are the same person (merged accounts resolved)."""

    code = ErrorCode.SELF_REFERRAL


class AlreadyReferred(ReferralRefused):
    """The member was referred already (once per member, whoever referred them)."""

    code = ErrorCode.ALREADY_REFERRED


class DrawNotOpen(Rejected):
    """Issue 13 (decision 033): entries asked for before the draw opens."""

    code = ErrorCode.DRAW_NOT_OPEN


class DrawClosed(DrawNotOpen):
    """Entries asked for at or after the draw's close time (or once it is closed)."""

    code = ErrorCode.DRAW_CLOSED


class DrawEntryLimit(Rejected):
    """More entries than the draw's per-member limit leaves."""

    code = ErrorCode.DRAW_ENTRY_LIMIT

    def __init__(self, limit: int, held: int, requested: int) -> None:
        super().__init__(f"this draw allows {limit} entries per member; you hold {held}, so "
                         f"{max(limit - held, 0)} more at most, not {requested}", field="entries")
        self.limit = limit
        self.held = held
        self.requested = requested


class DrawStillOpen(Conflict):
    """Closing a draw before its close time."""

    code = ErrorCode.DRAW_STILL_OPEN


class ChallengeStarted(Conflict):
    """Issue 13 (decision 032): a challenge's definition is immutable once it has started;
    only its end may move (never into the past)."""

    code = ErrorCode.CHALLENGE_STARTED

    def __init__(self, challenge_id: str, field: str = "id") -> None:
        super().__init__(f"challenge {challenge_id!r} has started: its definition cannot "
                         "change any more (end it and define a new one)", field=field)
