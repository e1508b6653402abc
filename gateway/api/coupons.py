"""Coupons and referrals over GraphQL (decision 025).

Partner fields (scope ``offers:manage``): ``issueCoupons`` (generated codes, shown once),
``importCoupons`` (the partner's own codes) and ``coupon`` (a code's status and uses), for the
partner's own campaigns only (another's answers NotFound). Member field (scope ``member``):
``recordReferral``, the code of the member who referred them. Coupons are presented at the till
in ``earnPoints(couponCodes)``; each code's outcome is a line of the earn's explanation."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.auth.scopes import Scope
from gateway.promotions import coupon_issue, referrals


@strawberry.enum(description="Where a coupon stands now.")
class CouponState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    USED_UP = "used_up"


@strawberry.input(description="Terms every code of one issue shares.")
class IssueCouponsInput:
    campaign_id: strawberry.ID = strawberry.field(
        description="Your campaign with a couponPresented condition.")
    count: int = strawberry.field(description=f"How many codes, 1 to {coupon_issue.MAX_ISSUE}.")
    max_uses: int = strawberry.field(default=1, description="Uses of each code, by anyone.")
    per_member_limit: int | None = strawberry.field(
        default=None, description="Uses of each code by one member; none: up to maxUses.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="Not usable from then on (purchases at or after it).")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="A personal coupon: only your customer with this id may use "
        "it.")


@strawberry.input(description="Your own codes (4 to 32 letters and digits; spaces and hyphens "
                  "ignored, case ignored).")
class ImportCouponsInput:
    campaign_id: strawberry.ID
    codes: list[str]
    max_uses: int = 1
    per_member_limit: int | None = None
    expires_at: datetime | None = None
    customer_id: strawberry.ID | None = None


@strawberry.type
class IssueCouponsSuccess:
    campaign_id: strawberry.ID
    codes: list[str] = strawberry.field(
        description="The codes: shown this once, only their HMAC is kept.")


@strawberry.type
class ImportCouponsSuccess:
    campaign_id: strawberry.ID
    imported: int


@strawberry.type
class CouponDetails:
    code_hint: str = strawberry.field(description="The code's last four characters.")
    campaign_id: strawberry.ID
    state: CouponState
    uses: int
    max_uses: int
    per_member_limit: int | None
    expires_at: datetime | None
    personal: bool
    created_at: datetime


@strawberry.type
class RecordReferralSuccess:
    referrer_code: str = strawberry.field(description="The referral code recorded.")


IssueCouponsResult = Annotated[
    IssueCouponsSuccess | e.InvalidInputError | e.NotFoundError | e.UnknownMemberError
    | e.ForbiddenError | e.RateLimitedError, strawberry.union("IssueCouponsResult")]
ImportCouponsResult = Annotated[
    ImportCouponsSuccess | e.InvalidInputError | e.NotFoundError | e.UnknownMemberError
    | e.ForbiddenError | e.RateLimitedError, strawberry.union("ImportCouponsResult")]
CouponResult = Annotated[
    CouponDetails | e.NotFoundError | e.InvalidInputError | e.ForbiddenError
    | e.RateLimitedError, strawberry.union("CouponResult")]
RecordReferralResult = Annotated[
    RecordReferralSuccess | e.ReferralRefusedError | e.SelfReferralError
    | e.AlreadyReferredError | e.InvalidInputError | e.ForbiddenError | e.RateLimitedError
    | e.UnknownMemberError, strawberry.union("RecordReferralResult")]


def _actor(c: Context) -> str:
    return f"client:{c.principal.client_id}"


def _customer(value: strawberry.ID | None) -> str | None:
    return None if value is None else str(value)


@strawberry.type
class CouponQueries:
    @strawberry.field(description="One of your coupons by its code: status and uses. "
                      "Scope: offers:manage.")
    async def coupon(self, info: Info[Context, None], code: str) -> CouponResult:
        c = info.context

        async def run() -> CouponDetails:
            now = c.services.clock.now()
            v = await c.run(coupon_issue.show_coupon, c.services.engine, c.partner_id, code, now)
            return CouponDetails(
                code_hint=v.code_hint, campaign_id=strawberry.ID(v.campaign_id),
                state=CouponState(str(v.status(now))), uses=v.uses, max_uses=v.max_uses,
                per_member_limit=v.per_member_limit, expires_at=v.expires_at,
                personal=v.personal, created_at=v.created_at)

        result: CouponResult = await answer(c, errors_of(CouponResult), Scope.OFFERS_MANAGE, run)
        return result


@strawberry.type
class CouponMutations:
    @strawberry.mutation(description="Generate coupon codes for one of your coupon campaigns "
                         "(12 symbols, 60 random bits each, no 0/O/1/I); the codes are in this "
                         "answer only. Scope: offers:manage.")
    async def issue_coupons(self, info: Info[Context, None],
                            input: IssueCouponsInput) -> IssueCouponsResult:
        c = info.context

        async def run() -> IssueCouponsSuccess:
            terms = coupon_issue.CouponTerms(str(input.campaign_id), input.max_uses,
                                             input.per_member_limit, input.expires_at)
            done = await c.run(coupon_issue.issue_coupons, c.services.engine, c.partner_id, terms,
                               input.count, customer_id=_customer(input.customer_id),
                               now=c.services.clock.now(), actor=_actor(c))
            return IssueCouponsSuccess(campaign_id=strawberry.ID(done.campaign_id),
                                       codes=list(done.codes))

        result: IssueCouponsResult = await answer(c, errors_of(IssueCouponsResult),
                                                  Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="Import your own coupon codes for one of your coupon "
                         "campaigns. Scope: offers:manage.")
    async def import_coupons(self, info: Info[Context, None],
                             input: ImportCouponsInput) -> ImportCouponsResult:
        c = info.context

        async def run() -> ImportCouponsSuccess:
            terms = coupon_issue.CouponTerms(str(input.campaign_id), input.max_uses,
                                             input.per_member_limit, input.expires_at)
            done = await c.run(coupon_issue.import_coupons, c.services.engine, c.partner_id, terms,
                               input.codes, customer_id=_customer(input.customer_id),
                               now=c.services.clock.now(), actor=_actor(c))
            return ImportCouponsSuccess(campaign_id=strawberry.ID(done.campaign_id),
                                        imported=done.count)

        result: ImportCouponsResult = await answer(c, errors_of(ImportCouponsResult),
                                                   Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="Record who referred you, by their referral code (once). "
                         "Scope: member.")
    async def record_referral(self, info: Info[Context, None],
                              referral_code: str) -> RecordReferralResult:
        c = info.context

        async def run() -> RecordReferralSuccess:
            shown = await c.run(referrals.record_referral, c.services.engine, c.member_id,
                                referral_code, c.services.clock.now())
            return RecordReferralSuccess(referrer_code=shown)

        result: RecordReferralResult = await answer(c, errors_of(RecordReferralResult),
                                                    Scope.MEMBER, run)
        return result
