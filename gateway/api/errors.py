"""GraphQL error types: one per domain error class, each implementing ``Error``; the one map.

Mutations return ``XSuccess | <errors>`` unions. ``to_error`` maps a ``DomainError`` to the
most specific error type the mutation's union declares (walking up the error tree), so a new
domain error never turns into an untyped failure. Points, members, the viewer and settlement
share this one map (``_BY_DOMAIN``); an error type's extra fields (``cap``, ``periodId``, ...)
are read from the same-named attributes of the domain error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry

from gateway.core import errors as domain
from gateway.core.errors import DomainError
from gateway.settlement import errors as settlement

strawberry.enum(domain.ErrorCode, description="Stable machine-readable error codes.")
ErrorCode = domain.ErrorCode


@strawberry.interface(description="Every expected failure: a stable code, a message saying the "
                      "cause, and the input field at fault when there is one.")
class Error:
    code: ErrorCode
    message: str
    field: str | None = None


@strawberry.type
class InvalidInputError(Error):
    pass


@strawberry.type
class InvalidAmountError(Error):
    pass


@strawberry.type
class CurrencyMismatchError(Error):
    expected: str
    got: str


@strawberry.type
class NotFoundError(Error):
    pass


@strawberry.type
class UnknownMemberError(Error):
    pass


@strawberry.type
class AlreadyLinkedError(Error):
    pass


@strawberry.type
class IdempotencyKeyReusedError(Error):
    pass


@strawberry.type
class HoldExpiredError(Error):
    pass


@strawberry.type
class HoldAlreadySettledError(Error):
    pass


@strawberry.type
class PurchaseAlreadyRecordedError(Error):
    pass


@strawberry.type
class InsufficientPointsError(Error):
    requested: int
    available: int


@strawberry.type(description="A capture asked for more than the hold holds.")
class CaptureExceedsHoldError(Error):
    requested: int
    held: int


@strawberry.type
class RuleNotInForceError(Error):
    pass


@strawberry.type
class CapExceededError(Error):
    cap: int


@strawberry.type
class RedemptionNotAcceptedError(Error):
    pass


@strawberry.type
class NothingToReturnError(Error):
    pass


@strawberry.type
class ConsentRequiredError(Error):
    pass


@strawberry.type
class ForbiddenError(Error):
    scope: str


@strawberry.type
class RateLimitedError(Error):
    retry_after_seconds: int


@strawberry.type
class PeriodClosedError(Error):
    period_id: str


@strawberry.type
class SettlementUnbalancedError(Error):
    pass


@strawberry.type
class StatementMalformedError(Error):
    line: int
    column: str | None


@strawberry.type
class FundingLimitReachedError(Error):
    funder: str
    left_points: int


@strawberry.type
class CampaignExistsError(Error):
    pass


@strawberry.type(description="No member has this referral code.")
class ReferralRefusedError(Error):
    pass


@strawberry.type(description="The referrer and the referred member are the same person "
                 "(merged accounts included).")
class SelfReferralError(Error):
    pass


@strawberry.type(description="The member was referred already.")
class AlreadyReferredError(Error):
    pass


@strawberry.type(description="The draw takes no entries yet (before opensAt).")
class DrawNotOpenError(Error):
    pass


@strawberry.type(description="The draw takes no more entries (at or after closesAt).")
class DrawClosedError(Error):
    pass


@strawberry.type(description="More entries than the draw's per-member limit leaves.")
class DrawEntryLimitError(Error):
    limit: int
    held: int
    requested: int


@strawberry.type(description="The draw cannot be closed before its closesAt.")
class DrawStillOpenError(Error):
    pass


@strawberry.type(description="The challenge has started: its definition cannot change; end it "
                 "and define a new one.")
class ChallengeStartedError(Error):
    pass


_BY_DOMAIN: dict[type[DomainError], type[Error]] = {
    domain.InvalidInput: InvalidInputError,
    domain.InvalidAmount: InvalidAmountError,
    domain.CurrencyMismatch: CurrencyMismatchError,
    domain.NotFound: NotFoundError,
    domain.UnknownMember: UnknownMemberError,
    domain.AlreadyLinked: AlreadyLinkedError,
    domain.IdempotencyKeyReused: IdempotencyKeyReusedError,
    domain.HoldExpired: HoldExpiredError,
    domain.HoldAlreadySettled: HoldAlreadySettledError,
    domain.PurchaseAlreadyRecorded: PurchaseAlreadyRecordedError,
    domain.InsufficientPoints: InsufficientPointsError,
    domain.CaptureExceedsHold: CaptureExceedsHoldError,
    domain.RuleNotInForce: RuleNotInForceError,
    domain.CapExceeded: CapExceededError,
    domain.RedemptionNotAccepted: RedemptionNotAcceptedError,
    domain.NothingToReturn: NothingToReturnError,
    domain.ConsentRequired: ConsentRequiredError,
    domain.Forbidden: ForbiddenError,
    domain.RateLimited: RateLimitedError,
    settlement.PeriodClosed: PeriodClosedError,
    settlement.SettlementUnbalanced: SettlementUnbalancedError,
    settlement.StatementMalformed: StatementMalformedError,
    domain.FundingLimitReached: FundingLimitReachedError,
    domain.CampaignExists: CampaignExistsError,
    domain.ReferralRefused: ReferralRefusedError,
    domain.SelfReferral: SelfReferralError,
    domain.AlreadyReferred: AlreadyReferredError,
    domain.DrawNotOpen: DrawNotOpenError,
    domain.DrawClosed: DrawClosedError,
    domain.DrawEntryLimit: DrawEntryLimitError,
    domain.DrawStillOpen: DrawStillOpenError,
    domain.ChallengeStarted: ChallengeStartedError,
}
# Where a GraphQL field's name differs from the domain error's attribute.
_ATTRIBUTE = {"retry_after_seconds": "retry_after_s"}
_BASE_FIELDS = frozenset({"code", "message", "field"})


_EXTRA_FIELDS: dict[type[Error], tuple[str, ...]] = {}


def _extra_fields(kind: type[Error]) -> tuple[str, ...]:
    found = _EXTRA_FIELDS.get(kind)
    if found is None:
        definition = kind.__strawberry_definition__  # type: ignore[attr-defined]
        found = tuple(f.python_name for f in definition.fields
                      if f.python_name not in _BASE_FIELDS)
        _EXTRA_FIELDS[kind] = found
    return found


def _extra(exc: DomainError, kind: type[Error]) -> dict[str, Any]:
    return {name: getattr(exc, _ATTRIBUTE.get(name, name)) for name in _extra_fields(kind)}


def to_error(exc: DomainError, allowed: Iterable[type[Error]]) -> Error:
    """The most specific allowed error type for ``exc``; its code stays the precise one."""
    allowed_set = set(allowed)
    for cls in type(exc).__mro__:
        kind = _BY_DOMAIN.get(cls)
        if kind is not None and kind in allowed_set:
            return kind(code=exc.code, message=exc.message, field=exc.field, **_extra(exc, kind))
    raise exc  # not declared anywhere: a bug; masked as an unexpected error


def is_domain_error(exc: BaseException | None) -> bool:
    return isinstance(exc, DomainError)
