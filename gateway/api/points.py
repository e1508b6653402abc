"""Points mutations (earn, redeem, authorise/capture/void, return) and the earn preview.

Each field is one ``Resolver`` (``gateway.api.results``): its scope, a command bound to the
caller's partner, the ledger service it runs in the thread pool, and how its result reads; the
errors it may answer are its result union's members. The purchase's channel and lines are the
rule engine's own types (``partners.config.Channel``, ``partners.rules.LineItem``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.bigint import MinorUnits
from gateway.api.context import Context
from gateway.api.results import Resolver
from gateway.api.types import (
    AppliedPromotion,
    Channel,
    Money,
    MoneyInput,
    SkippedPromotion,
    TillReward,
)
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput
from gateway.core.ids import CustomerId, HoldId, PartnerId, PurchaseId
from gateway.ledger import holds, service
from gateway.ledger import model as m
from partners.rules import LineItem

MAX_LINES = 100
MAX_COUPONS = 10


@strawberry.input(description="One line of the basket, for category multipliers and per-litre "
                  "earn.")
class LineItemInput:
    amount_minor: MinorUnits
    category: str | None = None
    quantity_milli: int | None = strawberry.field(
        default=None, description="Quantity in thousandths (1000 = one litre or one unit)."
    )
    sku: str | None = strawberry.field(
        default=None, description="Your product code (campaign conditions and multipliers).")

    def to_domain(self) -> LineItem:
        return LineItem(self.amount_minor, self.category, self.quantity_milli, self.sku)


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
    coupon_codes: list[str] | None = strawberry.field(
        default=None, description="Coupon codes presented at the till (campaign coupons).")

    def to_command(self, partner_id: PartnerId, max_lines: int = MAX_LINES) -> m.EarnPoints:
        if len(self.lines) > max_lines:
            raise InvalidInput(f"at most {max_lines} lines per purchase", field="lines")
        coupons = tuple(self.coupon_codes or ())
        if len(coupons) > MAX_COUPONS:
            raise InvalidInput(f"at most {MAX_COUPONS} coupon codes per purchase",
                               field="couponCodes")
        return m.EarnPoints(
            partner_id=partner_id, customer_id=_opt(self.customer_id),
            card_number=self.card_number, store_code=self.store_code,
            amount=self.amount.to_domain("amount"), channel=self.channel,
            purchase_id=_text(self.purchase_id, "purchaseId"),
            idempotency_key=self.idempotency_key,
            lines=tuple(line.to_domain() for line in self.lines), occurred_at=self.occurred_at,
            coupon_codes=coupons,
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

    def to_command(self, partner_id: PartnerId, max_lines: int = MAX_LINES) -> m.EarnPoints:
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
    coupon_codes: list[str] | None = strawberry.field(
        default=None, description="Coupon codes presented at the till: one whose campaign gives "
        "a better point value here is used when that value pays (explanation says which).")

    def to_command(self, partner_id: PartnerId) -> m.RedeemPoints:
        coupons = tuple(self.coupon_codes or ())
        if len(coupons) > MAX_COUPONS:
            raise InvalidInput(f"at most {MAX_COUPONS} coupon codes per redemption",
                               field="couponCodes")
        return m.RedeemPoints(
            partner_id=partner_id, customer_id=_opt(self.customer_id), points=self.points,
            card_number=self.card_number, store_code=self.store_code,
            basket=self.basket_amount.to_domain("basketAmount"),
            idempotency_key=self.idempotency_key,
            purchase_id=None if self.purchase_id is None else _text(self.purchase_id,
                                                                    "purchaseId"),
            channel=self.channel, coupon_codes=coupons,
        )


@strawberry.input
class CaptureRedemptionInput:
    hold_id: strawberry.ID
    idempotency_key: str
    points: int | None = strawberry.field(default=None, description="Omit to capture all held.")

    def to_command(self, partner_id: PartnerId) -> m.CaptureRedemption:
        return m.CaptureRedemption(partner_id, HoldId(str(self.hold_id)), self.idempotency_key,
                                   self.points)


@strawberry.input
class VoidRedemptionInput:
    hold_id: strawberry.ID
    idempotency_key: str

    def to_command(self, partner_id: PartnerId) -> m.VoidRedemption:
        return m.VoidRedemption(partner_id, HoldId(str(self.hold_id)), self.idempotency_key)


@strawberry.input
class ReturnPurchaseInput:
    purchase_id: str
    amount: MoneyInput = strawberry.field(description="The part of the purchase returned.")
    idempotency_key: str

    def to_command(self, partner_id: PartnerId) -> m.ReturnPurchase:
        return m.ReturnPurchase(partner_id, _text(self.purchase_id, "purchaseId"),
                                self.amount.to_domain("amount"), self.idempotency_key)


@strawberry.type
class EarnPointsSuccess:
    operation_id: strawberry.ID
    points: int
    rule_version: int
    debt_repaid: int
    available: int | None = strawberry.field(
        description="The member's wallet after the earn; null when named by a bare card number.")
    recorded_at: datetime
    pending: int = strawberry.field(
        description="Of these points, how many wait out your return window before they spend."
    )
    bonus_points: int = strawberry.field(
        description="Of these points, how many campaigns gave (the sum of promotions' points).")
    # The answer itself: the lists below are built only when a query asks for them (an earn
    # that applied 35 campaigns built ~100 objects per answer that most tills never read).
    earned: strawberry.Private[m.Earned]

    @strawberry.field(
        description="How the points were computed: the rule's lines, then every campaign "
                    "applied and every campaign that matched but was skipped, with why.")
    def explanation(self) -> list[str]:
        return list(self.earned.explanation)

    @strawberry.field(description="Every campaign applied, in the order applied.")
    def promotions(self) -> list[AppliedPromotion]:
        return [AppliedPromotion.of(p) for p in self.earned.promotions]

    @strawberry.field(description="What the till applies now: gifts, free delivery, discounts.")
    def till_rewards(self) -> list[TillReward]:
        return [TillReward.of(p.till_reward) for p in self.earned.promotions
                if p.till_reward is not None]

    @strawberry.field(description="Campaigns that matched but were not applied, and why.")
    def skipped_promotions(self) -> list[SkippedPromotion]:
        return [SkippedPromotion.of(s) for s in self.earned.skipped]

    @staticmethod
    def of(r: m.Earned) -> EarnPointsSuccess:
        return EarnPointsSuccess(
            operation_id=strawberry.ID(r.operation_id), points=r.points,
            rule_version=r.rule_version, debt_repaid=r.debt_repaid, available=r.available,
            recorded_at=r.recorded_at, pending=r.pending, bonus_points=r.bonus_points,
            earned=r)


@strawberry.type
class PreviewEarnSuccess:
    points: int
    uncapped_points: int
    capped_by: str | None
    rule_version: int
    explanation: list[str]

    @staticmethod
    def of(q: m.PreviewedEarn) -> PreviewEarnSuccess:
        return PreviewEarnSuccess(points=q.points, uncapped_points=q.uncapped_points,
                                  capped_by=q.capped_by, rule_version=q.rule_version,
                                  explanation=list(q.explanation))


@strawberry.type
class RedeemPointsSuccess:
    operation_id: strawberry.ID
    points: int
    value: Money = strawberry.field(description="What the points pay, in your currency.")
    rule_version: int
    available: int
    recorded_at: datetime = strawberry.field(
        description="When the gateway recorded it: the time settlement periods go by.")
    promotions: list[AppliedPromotion] = strawberry.field(
        description="The campaign whose better point value paid here (a pointsDiscount), "
                    "if any: 0 points, its explanation names it and the value.")
    explanation: list[str] = strawberry.field(
        description="One line per coupon presented: used, or why not (empty when none was).")

    @staticmethod
    def of(r: m.Redeemed) -> RedeemPointsSuccess:
        return RedeemPointsSuccess(
            operation_id=strawberry.ID(r.operation_id), points=r.points,
            value=Money.of(r.value), rule_version=r.rule_version, available=r.available,
            recorded_at=r.recorded_at,
            promotions=[AppliedPromotion.of(p) for p in r.promotions],
            explanation=list(r.explanation))


@strawberry.type
class AuthoriseRedemptionSuccess:
    operation_id: strawberry.ID
    hold_id: strawberry.ID
    points: int
    value: Money
    rule_version: int
    expires_at: datetime
    available: int
    promotions: list[AppliedPromotion] = strawberry.field(
        description="The campaign whose better point value prices the hold (a pointsDiscount), "
                    "if any: the capture pays the same value a point.")
    explanation: list[str] = strawberry.field(
        description="One line per coupon presented: used, or why not (empty when none was). "
                    "A used coupon is given back if the hold is voided or lapses.")

    @staticmethod
    def of(r: m.HoldPlaced) -> AuthoriseRedemptionSuccess:
        return AuthoriseRedemptionSuccess(
            operation_id=strawberry.ID(r.operation_id), hold_id=strawberry.ID(r.hold_id),
            points=r.points, value=Money.of(r.value), rule_version=r.rule_version,
            expires_at=r.expires_at, available=r.available,
            promotions=[AppliedPromotion.of(p) for p in r.promotions],
            explanation=list(r.explanation))


@strawberry.type
class CaptureRedemptionSuccess:
    operation_id: strawberry.ID
    hold_id: strawberry.ID
    points: int
    released: int = strawberry.field(description="Held points not captured, given back.")
    value: Money
    available: int

    @staticmethod
    def of(r: m.HoldCaptured) -> CaptureRedemptionSuccess:
        return CaptureRedemptionSuccess(
            operation_id=strawberry.ID(r.operation_id), hold_id=strawberry.ID(r.hold_id),
            points=r.points, released=r.released, value=Money.of(r.value),
            available=r.available)


@strawberry.type
class VoidRedemptionSuccess:
    operation_id: strawberry.ID
    hold_id: strawberry.ID
    released: int
    available: int

    @staticmethod
    def of(r: m.HoldVoided) -> VoidRedemptionSuccess:
        return VoidRedemptionSuccess(
            operation_id=strawberry.ID(r.operation_id), hold_id=strawberry.ID(r.hold_id),
            released=r.released, available=r.available)


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

    @staticmethod
    def of(r: m.Returned) -> ReturnPurchaseSuccess:
        return ReturnPurchaseSuccess(
            operation_id=strawberry.ID(r.operation_id), purchase_id=r.purchase_id,
            points_reversed=r.points_reversed, points_owed=r.points_owed,
            points_reversed_total=r.points_reversed_total,
            points_unrecovered=r.points_unrecovered, points_refunded=r.points_refunded,
            amount_returned_total=Money.of(r.amount_returned_total),
            available=r.available, debt=r.debt, recorded_at=r.recorded_at)


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


def _opt(value: strawberry.ID | None) -> CustomerId | None:
    return None if value is None else CustomerId(str(value))


def _text(value: str, field: str) -> PurchaseId:
    if not value.strip() or len(value) > 200:
        raise InvalidInput(f"{field} must be 1 to 200 characters, not blank", field=field)
    return PurchaseId(value)


_PREVIEW: Resolver[PreviewEarnInput, m.EarnPoints, m.PreviewedEarn] = Resolver(
    PreviewEarnResult, Scope.POINTS_EARN,
    command=lambda c, input: input.to_command(c.partner_id, c.max_lines),
    service=lambda s, cmd: service.preview_earn(s.ledger, cmd), present=PreviewEarnSuccess.of)
_EARN: Resolver[EarnPointsInput, m.EarnPoints, m.Earned] = Resolver(
    EarnPointsResult, Scope.POINTS_EARN,
    command=lambda c, input: input.to_command(c.partner_id, c.max_lines),
    service=lambda s, cmd: service.earn_points(s.ledger, cmd), present=EarnPointsSuccess.of,
    ledger_command=True)
_REDEEM: Resolver[RedeemPointsInput, m.RedeemPoints, m.Redeemed] = Resolver(
    RedeemPointsResult, Scope.POINTS_REDEEM, command=lambda c, input: input.to_command(
        c.partner_id),
    service=lambda s, cmd: service.redeem_points(s.ledger, cmd), present=RedeemPointsSuccess.of,
    ledger_command=True)
_AUTHORISE: Resolver[RedeemPointsInput, m.AuthoriseRedemption, m.HoldPlaced] = Resolver(
    AuthoriseRedemptionResult, Scope.POINTS_REDEEM,
    command=lambda c, input: m.AuthoriseRedemption.of(input.to_command(c.partner_id)),
    service=lambda s, cmd: holds.authorise_redemption(s.ledger, cmd),
    present=AuthoriseRedemptionSuccess.of, ledger_command=True)
_CAPTURE: Resolver[CaptureRedemptionInput, m.CaptureRedemption, m.HoldCaptured] = Resolver(
    CaptureRedemptionResult, Scope.POINTS_REDEEM,
    command=lambda c, input: input.to_command(c.partner_id),
    service=lambda s, cmd: holds.capture_redemption(s.ledger, cmd),
    present=CaptureRedemptionSuccess.of, ledger_command=True)
_VOID: Resolver[VoidRedemptionInput, m.VoidRedemption, m.HoldVoided] = Resolver(
    VoidRedemptionResult, Scope.POINTS_REDEEM,
    command=lambda c, input: input.to_command(c.partner_id),
    service=lambda s, cmd: holds.void_redemption(s.ledger, cmd),
    present=VoidRedemptionSuccess.of, ledger_command=True)
_RETURN: Resolver[ReturnPurchaseInput, m.ReturnPurchase, m.Returned] = Resolver(
    ReturnPurchaseResult, Scope.POINTS_REVERSE,
    command=lambda c, input: input.to_command(c.partner_id),
    service=lambda s, cmd: service.return_purchase(s.ledger, cmd),
    present=ReturnPurchaseSuccess.of, ledger_command=True)


@strawberry.type
class PointsQueries:
    @strawberry.field(description="What a purchase would earn now, and why; posts nothing. "
                      "Scope: points:earn.")
    async def preview_earn(
        self, info: Info[Context, None], input: PreviewEarnInput
    ) -> PreviewEarnResult:
        result: PreviewEarnResult = await _PREVIEW(info, input)
        return result


@strawberry.type
class PointsMutations:
    @strawberry.mutation(description="Award points for a purchase. Scope: points:earn.")
    async def earn_points(
        self, info: Info[Context, None], input: EarnPointsInput
    ) -> EarnPointsResult:
        result: EarnPointsResult = await _EARN(info, input)
        return result

    @strawberry.mutation(description="Spend points now. Scope: points:redeem.")
    async def redeem_points(
        self, info: Info[Context, None], input: RedeemPointsInput
    ) -> RedeemPointsResult:
        result: RedeemPointsResult = await _REDEEM(info, input)
        return result

    @strawberry.mutation(description="Hold points for a redemption, to capture or void later. "
                         "Scope: points:redeem.")
    async def authorise_redemption(
        self, info: Info[Context, None], input: RedeemPointsInput
    ) -> AuthoriseRedemptionResult:
        result: AuthoriseRedemptionResult = await _AUTHORISE(info, input)
        return result

    @strawberry.mutation(description="Capture all or part of a hold. Scope: points:redeem.")
    async def capture_redemption(
        self, info: Info[Context, None], input: CaptureRedemptionInput
    ) -> CaptureRedemptionResult:
        result: CaptureRedemptionResult = await _CAPTURE(info, input)
        return result

    @strawberry.mutation(description="Release a hold in full. Scope: points:redeem.")
    async def void_redemption(
        self, info: Info[Context, None], input: VoidRedemptionInput
    ) -> VoidRedemptionResult:
        result: VoidRedemptionResult = await _VOID(info, input)
        return result

    @strawberry.mutation(description="Return a purchase fully or partly: earned points are "
                         "reversed in proportion, points spent on it refunded. "
                         "Scope: points:reverse.")
    async def return_purchase(
        self, info: Info[Context, None], input: ReturnPurchaseInput
    ) -> ReturnPurchaseResult:
        result: ReturnPurchaseResult = await _RETURN(info, input)
        return result
