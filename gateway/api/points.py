"""Points mutations (earn, redeem, authorise/capture/void, return) and the earn preview.

Each resolver checks the scope, builds a command bound to the caller's partner, runs the ledger
service in the thread pool and maps the result or the domain error."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.bigint import MinorUnits
from gateway.api.context import Context
from gateway.api.results import COMMON, KEYED, attempt
from gateway.api.types import Channel, Money, MoneyInput
from gateway.core.errors import InvalidInput
from gateway.ledger import holds, service
from gateway.ledger import model as m

MAX_LINES = 100


@strawberry.input(description="One line of the basket, for category multipliers and per-litre "
                  "earn.")
class LineItemInput:
    amount_minor: MinorUnits
    category: str | None = None
    quantity_milli: int | None = strawberry.field(
        default=None, description="Quantity in thousandths (1000 = one litre or one unit)."
    )


@strawberry.input(description="Name the member with exactly one of customerId (linked here), "
                  "cardNumber (a coalition card: earns anywhere, no link needed) or storeCode "
                  "(the code the member's app shows).")
class EarnPointsInput:
    customer_id: strawberry.ID | None = None
    card_number: str | None = strawberry.field(
        default=None, description="The member's coalition card number (16 digits).")
    store_code: str | None = strawberry.field(
        default=None, description="The member's store code: its QR text, or its 12 digits.")
    amount: MoneyInput = strawberry.field(description="The purchase total, in your currency.")
    channel: Channel
    purchase_id: str = strawberry.field(description="Your id for the purchase; returns use it.")
    idempotency_key: str = strawberry.field(description="Retry with the same key: same answer.")
    lines: list[LineItemInput] = strawberry.field(default_factory=list)
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When the sale happened, if not now (late store uploads)."
    )

    def to_command(self, partner_id: str, max_lines: int = MAX_LINES) -> m.EarnPoints:
        if len(self.lines) > max_lines:
            raise InvalidInput(f"at most {max_lines} lines per purchase", field="lines")
        lines = tuple(m.PurchaseLine(li.amount_minor, li.category, li.quantity_milli)
                      for li in self.lines)
        return m.EarnPoints(
            partner_id=partner_id, customer_id=_opt(self.customer_id),
            card_number=self.card_number, store_code=self.store_code,
            amount=self.amount.to_domain("amount"), channel=self.channel.value,
            purchase_id=_text(self.purchase_id, "purchaseId"),
            idempotency_key=self.idempotency_key, lines=lines, occurred_at=self.occurred_at,
        )


@strawberry.input(description="A purchase to preview, as EarnPointsInput has it; a preview posts "
                  "nothing, so it needs no idempotencyKey and no purchaseId.")
class PreviewEarnInput:
    customer_id: strawberry.ID | None = None
    card_number: str | None = None
    store_code: str | None = None
    amount: MoneyInput = strawberry.field(description="The purchase total, in your currency.")
    channel: Channel
    lines: list[LineItemInput] = strawberry.field(default_factory=list)
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When the sale happened, if not now.")
    purchase_id: str | None = strawberry.field(
        default=None, description="Ignored: a preview records no purchase.")
    idempotency_key: str | None = strawberry.field(
        default=None, deprecation_reason="Ignored: a preview posts nothing. Omit it.")

    def to_command(self, partner_id: str, max_lines: int = MAX_LINES) -> m.EarnPoints:
        as_earn = EarnPointsInput(
            customer_id=self.customer_id, card_number=self.card_number,
            store_code=self.store_code, amount=self.amount, channel=self.channel,
            purchase_id="preview", idempotency_key="", lines=self.lines,
            occurred_at=self.occurred_at)
        return as_earn.to_command(partner_id, max_lines)


@strawberry.input(description="Name the member with a customerId linked here, or the storeCode "
                  "their app shows (their consent for this spend). A card number never spends.")
class RedeemPointsInput:
    customer_id: strawberry.ID | None = None
    store_code: str | None = strawberry.field(
        default=None, description="The member's store code: its QR text, or its 12 digits.")
    card_number: str | None = strawberry.field(
        default=None, description="Refused (CONSENT_REQUIRED): a card number may earn, never "
        "spend.")
    points: int
    basket_amount: MoneyInput = strawberry.field(
        description="The basket total the points pay towards (caps the share points may pay)."
    )
    idempotency_key: str
    purchase_id: str | None = strawberry.field(
        default=None, description="Link to your purchase so a return refunds these points."
    )
    channel: Channel | None = None

    def to_command(self, partner_id: str) -> m.RedeemPoints:
        return m.RedeemPoints(
            partner_id=partner_id, customer_id=_opt(self.customer_id), points=self.points,
            card_number=self.card_number, store_code=self.store_code,
            basket=self.basket_amount.to_domain("basketAmount"),
            idempotency_key=self.idempotency_key,
            purchase_id=None if self.purchase_id is None else _text(self.purchase_id,
                                                                    "purchaseId"),
            channel=None if self.channel is None else self.channel.value,
        )


@strawberry.input
class CaptureRedemptionInput:
    hold_id: strawberry.ID
    idempotency_key: str
    points: int | None = strawberry.field(default=None, description="Omit to capture all held.")


@strawberry.input
class VoidRedemptionInput:
    hold_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class ReturnPurchaseInput:
    purchase_id: str
    amount: MoneyInput = strawberry.field(description="The part of the purchase returned.")
    idempotency_key: str


@strawberry.type
class EarnPointsSuccess:
    operation_id: strawberry.ID
    points: int
    rule_version: int
    explanation: list[str] = strawberry.field(description="How the points were computed.")
    debt_repaid: int
    available: int | None = strawberry.field(
        description="The member's wallet after the earn; null when named by a bare card number.")
    recorded_at: datetime
    pending: int = strawberry.field(
        description="Of these points, how many wait out your return window before they spend."
    )


@strawberry.type
class PreviewEarnSuccess:
    points: int
    uncapped_points: int
    capped_by: str | None
    rule_version: int
    explanation: list[str]


@strawberry.type
class RedeemPointsSuccess:
    operation_id: strawberry.ID
    points: int
    value: Money = strawberry.field(description="What the points pay, in your currency.")
    rule_version: int
    available: int
    recorded_at: datetime = strawberry.field(
        description="When the gateway recorded it: the time settlement periods go by.")


@strawberry.type
class AuthoriseRedemptionSuccess:
    operation_id: strawberry.ID
    hold_id: strawberry.ID
    points: int
    value: Money
    rule_version: int
    expires_at: datetime
    available: int


@strawberry.type
class CaptureRedemptionSuccess:
    operation_id: strawberry.ID
    hold_id: strawberry.ID
    points: int
    released: int = strawberry.field(description="Held points not captured, given back.")
    value: Money
    available: int


@strawberry.type
class VoidRedemptionSuccess:
    operation_id: strawberry.ID
    hold_id: strawberry.ID
    released: int
    available: int


@strawberry.type
class ReturnPurchaseSuccess:
    operation_id: strawberry.ID
    purchase_id: str
    points_reversed: int = strawberry.field(description=(
        "Earned points taken back from the member's wallet (spendable and pending) only: the "
        "part taken as debt is pointsOwed and the part that could not be taken back is "
        "pointsUnrecovered. pointsReversedTotal is the sum of the three."))
    points_reversed_total: int = strawberry.field(description=(
        "Every earned point this return reverses: pointsReversed + pointsOwed + "
        "pointsUnrecovered."))
    points_owed: int = strawberry.field(description="Taken back beyond the wallet, as debt.")
    points_unrecovered: int = strawberry.field(description="Could not be taken back.")
    points_refunded: int = strawberry.field(description="Points spent on it, given back.")
    amount_returned_total: Money
    available: int
    debt: int
    recorded_at: datetime | None = strawberry.field(description=(
        "When the gateway recorded it: the time settlement periods go by (null only for a "
        "replayed answer first given before this field existed)."))


EARN_ERRORS = (*KEYED, e.UnknownMemberError, e.CurrencyMismatchError, e.RuleNotInForceError,
               e.CapExceededError, e.PurchaseAlreadyRecordedError)
PREVIEW_ERRORS = (*COMMON, e.InvalidAmountError, e.CurrencyMismatchError,
                  e.RuleNotInForceError)
REDEEM_ERRORS = (*KEYED, e.UnknownMemberError, e.CurrencyMismatchError, e.RuleNotInForceError,
                 e.CapExceededError, e.InsufficientPointsError, e.RedemptionNotAcceptedError,
                 e.ConsentRequiredError)
CAPTURE_ERRORS = (*KEYED, e.NotFoundError, e.HoldExpiredError, e.HoldAlreadySettledError,
                  e.CaptureExceedsHoldError, e.CapExceededError, e.RuleNotInForceError)
VOID_ERRORS = (*KEYED, e.NotFoundError, e.HoldAlreadySettledError)
RETURN_ERRORS = (*KEYED, e.NotFoundError, e.NothingToReturnError, e.CurrencyMismatchError)

_KEYED_UNION = (e.InvalidInputError | e.ForbiddenError | e.RateLimitedError
                | e.IdempotencyKeyReusedError | e.InvalidAmountError)

EarnPointsResult = Annotated[
    EarnPointsSuccess | e.UnknownMemberError | e.CurrencyMismatchError | e.RuleNotInForceError
    | e.CapExceededError | e.PurchaseAlreadyRecordedError | _KEYED_UNION,
    strawberry.union("EarnPointsResult"),
]
PreviewEarnResult = Annotated[
    PreviewEarnSuccess | e.CurrencyMismatchError | e.RuleNotInForceError | e.InvalidInputError
    | e.ForbiddenError | e.RateLimitedError | e.InvalidAmountError,
    strawberry.union("PreviewEarnResult"),
]
RedeemPointsResult = Annotated[
    RedeemPointsSuccess | e.UnknownMemberError | e.CurrencyMismatchError | e.RuleNotInForceError
    | e.CapExceededError | e.InsufficientPointsError | e.RedemptionNotAcceptedError
    | e.ConsentRequiredError | _KEYED_UNION,
    strawberry.union("RedeemPointsResult"),
]
AuthoriseRedemptionResult = Annotated[
    AuthoriseRedemptionSuccess | e.UnknownMemberError | e.CurrencyMismatchError
    | e.RuleNotInForceError | e.CapExceededError | e.InsufficientPointsError
    | e.RedemptionNotAcceptedError | e.ConsentRequiredError | _KEYED_UNION,
    strawberry.union("AuthoriseRedemptionResult"),
]
CaptureRedemptionResult = Annotated[
    CaptureRedemptionSuccess | e.NotFoundError | e.HoldExpiredError | e.HoldAlreadySettledError
    # InsufficientPointsError stays so that old clients' fragments still validate; a capture
    # beyond the hold answers CaptureExceedsHoldError (CAPTURE_EXCEEDS_HOLD).
    | e.CaptureExceedsHoldError | e.InsufficientPointsError | e.CapExceededError
    | e.RuleNotInForceError | _KEYED_UNION,
    strawberry.union("CaptureRedemptionResult"),
]
VoidRedemptionResult = Annotated[
    VoidRedemptionSuccess | e.NotFoundError | e.HoldAlreadySettledError | _KEYED_UNION,
    strawberry.union("VoidRedemptionResult"),
]
ReturnPurchaseResult = Annotated[
    ReturnPurchaseSuccess | e.NotFoundError | e.NothingToReturnError | e.CurrencyMismatchError
    | _KEYED_UNION,
    strawberry.union("ReturnPurchaseResult"),
]


def _opt(value: strawberry.ID | None) -> str | None:
    return None if value is None else str(value)


def _text(value: str, field: str) -> str:
    if not value.strip() or len(value) > 200:
        raise InvalidInput(f"{field} must be 1 to 200 characters, not blank", field=field)
    return value


@strawberry.type
class PointsQueries:
    @strawberry.field(description="What a purchase would earn now, and why; posts nothing. "
                      "Scope: points:earn.")
    async def preview_earn(
        self, info: Info[Context, None], input: PreviewEarnInput
    ) -> PreviewEarnResult:
        c = info.context

        async def run() -> PreviewEarnSuccess:
            c.require("points:earn")
            cmd = input.to_command(c.partner_id, c.max_lines)
            q = await c.run(service.preview_earn, c.services.ledger, cmd)
            return PreviewEarnSuccess(points=q.points, uncapped_points=q.uncapped_points,
                                      capped_by=q.capped_by, rule_version=q.rule_version,
                                      explanation=list(q.explanation))

        result: PreviewEarnResult = await attempt(run, PREVIEW_ERRORS)
        return result


@strawberry.type
class PointsMutations:
    @strawberry.mutation(description="Award points for a purchase. Scope: points:earn.")
    async def earn_points(
        self, info: Info[Context, None], input: EarnPointsInput
    ) -> EarnPointsResult:
        c = info.context

        async def run() -> EarnPointsSuccess:
            c.require("points:earn")
            cmd = input.to_command(c.partner_id, c.max_lines)
            r = await c.run(service.earn_points, c.services.ledger, cmd)
            return EarnPointsSuccess(
                operation_id=strawberry.ID(r.operation_id), points=r.points,
                rule_version=r.rule_version, explanation=list(r.explanation),
                debt_repaid=r.debt_repaid, available=r.available, recorded_at=r.recorded_at,
                pending=r.pending)

        result: EarnPointsResult = await attempt(run, EARN_ERRORS)
        return result

    @strawberry.mutation(description="Spend points now. Scope: points:redeem.")
    async def redeem_points(
        self, info: Info[Context, None], input: RedeemPointsInput
    ) -> RedeemPointsResult:
        c = info.context

        async def run() -> RedeemPointsSuccess:
            c.require("points:redeem")
            r = await c.run(service.redeem_points, c.services.ledger,
                            input.to_command(c.partner_id))
            return RedeemPointsSuccess(
                operation_id=strawberry.ID(r.operation_id), points=r.points,
                value=Money.of(r.value), rule_version=r.rule_version, available=r.available,
                recorded_at=r.recorded_at)

        result: RedeemPointsResult = await attempt(run, REDEEM_ERRORS)
        return result

    @strawberry.mutation(description="Hold points for a redemption, to capture or void later. "
                         "Scope: points:redeem.")
    async def authorise_redemption(
        self, info: Info[Context, None], input: RedeemPointsInput
    ) -> AuthoriseRedemptionResult:
        c = info.context

        async def run() -> AuthoriseRedemptionSuccess:
            c.require("points:redeem")
            r = await c.run(holds.authorise_redemption, c.services.ledger,
                            m.AuthoriseRedemption.of(input.to_command(c.partner_id)))
            return AuthoriseRedemptionSuccess(
                operation_id=strawberry.ID(r.operation_id), hold_id=strawberry.ID(r.hold_id),
                points=r.points, value=Money.of(r.value), rule_version=r.rule_version,
                expires_at=r.expires_at, available=r.available)

        result: AuthoriseRedemptionResult = await attempt(run, REDEEM_ERRORS)
        return result

    @strawberry.mutation(description="Capture all or part of a hold. Scope: points:redeem.")
    async def capture_redemption(
        self, info: Info[Context, None], input: CaptureRedemptionInput
    ) -> CaptureRedemptionResult:
        c = info.context

        async def run() -> CaptureRedemptionSuccess:
            c.require("points:redeem")
            cmd = m.CaptureRedemption(c.partner_id, str(input.hold_id), input.idempotency_key,
                                      input.points)
            r = await c.run(holds.capture_redemption, c.services.ledger, cmd)
            return CaptureRedemptionSuccess(
                operation_id=strawberry.ID(r.operation_id), hold_id=strawberry.ID(r.hold_id),
                points=r.points, released=r.released, value=Money.of(r.value),
                available=r.available)

        result: CaptureRedemptionResult = await attempt(run, CAPTURE_ERRORS)
        return result

    @strawberry.mutation(description="Release a hold in full. Scope: points:redeem.")
    async def void_redemption(
        self, info: Info[Context, None], input: VoidRedemptionInput
    ) -> VoidRedemptionResult:
        c = info.context

        async def run() -> VoidRedemptionSuccess:
            c.require("points:redeem")
            cmd = m.VoidRedemption(c.partner_id, str(input.hold_id), input.idempotency_key)
            r = await c.run(holds.void_redemption, c.services.ledger, cmd)
            return VoidRedemptionSuccess(
                operation_id=strawberry.ID(r.operation_id), hold_id=strawberry.ID(r.hold_id),
                released=r.released, available=r.available)

        result: VoidRedemptionResult = await attempt(run, VOID_ERRORS)
        return result

    @strawberry.mutation(description="Return a purchase fully or partly: earned points are "
                         "reversed in proportion, points spent on it refunded. "
                         "Scope: points:reverse.")
    async def return_purchase(
        self, info: Info[Context, None], input: ReturnPurchaseInput
    ) -> ReturnPurchaseResult:
        c = info.context

        async def run() -> ReturnPurchaseSuccess:
            c.require("points:reverse")
            cmd = m.ReturnPurchase(c.partner_id, _text(input.purchase_id, "purchaseId"),
                                   input.amount.to_domain("amount"), input.idempotency_key)
            r = await c.run(service.return_purchase, c.services.ledger, cmd)
            return ReturnPurchaseSuccess(
                operation_id=strawberry.ID(r.operation_id), purchase_id=r.purchase_id,
                points_reversed=r.points_reversed, points_owed=r.points_owed,
                points_reversed_total=r.points_reversed_total,
                points_unrecovered=r.points_unrecovered, points_refunded=r.points_refunded,
                amount_returned_total=Money.of(r.amount_returned_total),
                available=r.available, debt=r.debt, recorded_at=r.recorded_at)

        result: ReturnPurchaseResult = await attempt(run, RETURN_ERRORS)
        return result
