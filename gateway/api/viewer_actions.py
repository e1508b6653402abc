"""The member's own actions (scope ``member``, member tokens only): unlink a brand, give or
withdraw a consent, donate points, merge a second account, export and erase their data.

Points move only under an ``idempotencyKey`` (donate, merge); every failure is a typed error."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.api.viewer import Consent, ConsentPurpose, LinkedBrand
from gateway.auth.scopes import Scope
from gateway.core.ids import MemberId, PartnerId
from gateway.ledger import erasure, member_ops
from gateway.members import consent as codes
from gateway.members import viewer as domain
from gateway.members.export import export_member
from gateway.members.merge_proof import prove_second_account


@strawberry.enum(description="What happens to the points left when an account is erased.")
class RemainingPoints(Enum):
    FORFEIT = "FORFEIT"
    DONATE = "DONATE"


@strawberry.type
class UnlinkBrandSuccess:
    partner_id: strawberry.ID
    linked_brands: list[LinkedBrand]


@strawberry.type
class SetConsentSuccess:
    consent: Consent


@strawberry.type
class DonatePointsSuccess:
    operation_id: strawberry.ID
    charity_partner_id: strawberry.ID
    points: int
    available: int
    recorded_at: datetime


@strawberry.type
class MergeAccountSuccess:
    operation_id: strawberry.ID | None
    wallet_moved: int
    pending_moved: int
    debt_moved: int
    lots_moved: int
    brands_moved: list[strawberry.ID]


@strawberry.type(description="A one-time link code: give it to one brand to link your account "
                 "there. Single use, 10 minutes.")
class CreateLinkCodeSuccess:
    link_code: str
    expires_at: datetime


@strawberry.type
class ExportMyDataSuccess:
    json: str = strawberry.field(description="Everything held about you, as JSON (GDPR art. 20).")


@strawberry.type
class EraseMeSuccess:
    erased_at: datetime
    forfeited: int
    donated: int
    links_closed: int


_Base = e.InvalidInputError | e.ForbiddenError | e.RateLimitedError | e.UnknownMemberError
UnlinkBrandResult = Annotated[UnlinkBrandSuccess | _Base | e.NotFoundError,
                              strawberry.union("UnlinkBrandResult")]
SetConsentResult = Annotated[SetConsentSuccess | _Base | e.NotFoundError,
                             strawberry.union("SetConsentResult")]
CreateLinkCodeResult = Annotated[CreateLinkCodeSuccess | _Base,
                                strawberry.union("CreateLinkCodeResult")]
ExportMyDataResult = Annotated[ExportMyDataSuccess | _Base, strawberry.union("ExportMyDataResult")]
_Points = (_Base | e.NotFoundError | e.IdempotencyKeyReusedError | e.InvalidAmountError
           | e.InsufficientPointsError | e.RuleNotInForceError)
DonatePointsResult = Annotated[DonatePointsSuccess | _Points,
                               strawberry.union("DonatePointsResult")]
MergeAccountResult = Annotated[MergeAccountSuccess | _Points,
                               strawberry.union("MergeAccountResult")]
EraseMeResult = Annotated[EraseMeSuccess | _Points, strawberry.union("EraseMeResult")]


# What each field may answer: its result union's error members.
_UNLINK, _LINK_CODE, _CONSENT = (errors_of(UnlinkBrandResult), errors_of(CreateLinkCodeResult),
                                 errors_of(SetConsentResult))
_DONATE, _MERGE, _EXPORT, _ERASE = (errors_of(DonatePointsResult), errors_of(MergeAccountResult),
                                    errors_of(ExportMyDataResult), errors_of(EraseMeResult))


def _member(c: Context) -> MemberId:
    """Only a member token has a member (the scope itself was checked by ``answer``)."""
    return c.member_id


@strawberry.type
class ViewerMutations:
    @strawberry.mutation(description="Unlink a brand; your points stay. Scope: member.")
    async def unlink_brand(self, info: Info[Context, None],
                           partner_id: strawberry.ID) -> UnlinkBrandResult:
        c = info.context

        async def run() -> UnlinkBrandSuccess:
            mid = _member(c)
            s = c.services
            await c.run(domain.unlink_brand, s.engine, s.clock, mid, PartnerId(str(partner_id)))
            brands = await c.run(domain.linked_brands, s.engine, mid)
            return UnlinkBrandSuccess(partner_id=partner_id, linked_brands=[
                LinkedBrand(partner_id=strawberry.ID(b.partner_id), partner_name=b.partner_name,
                            linked_at=b.linked_at, consent_via=b.via) for b in brands])

        result: UnlinkBrandResult = await answer(c, _UNLINK, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Make a one-time link code (8 characters, 10 minutes, "
                         "single use) to give a brand. Scope: member.")
    async def create_link_code(self, info: Info[Context, None]) -> CreateLinkCodeResult:
        c = info.context

        async def run() -> CreateLinkCodeSuccess:
            mid = _member(c)
            made = await c.run(codes.create_link_code, c.services.engine, c.services.clock, mid)
            return CreateLinkCodeSuccess(link_code=made.code, expires_at=made.expires_at)

        result: CreateLinkCodeResult = await answer(c, _LINK_CODE, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Give or withdraw a consent: marketing per partner, "
                         "purchase_history and coalition_marketing coalition-wide (no "
                         "partner). Scope: member.")
    async def set_consent(self, info: Info[Context, None], purpose: ConsentPurpose,
                          granted: bool, partner_id: strawberry.ID | None = None
                          ) -> SetConsentResult:
        c = info.context

        async def run() -> SetConsentSuccess:
            mid = _member(c)
            state = await c.run(domain.set_consent, c.services.engine, c.services.clock, mid,
                                purpose.value, str(partner_id) if partner_id else None,
                                granted, "app")
            return SetConsentSuccess(consent=Consent.of(state))

        result: SetConsentResult = await answer(c, _CONSENT, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Donate points to a charity partner. Scope: member.")
    async def donate_points(self, info: Info[Context, None], charity_partner_id: strawberry.ID,
                            points: int, idempotency_key: str) -> DonatePointsResult:
        c = info.context

        async def run() -> DonatePointsSuccess:
            mid = _member(c)
            d = await c.run(member_ops.donate_points, c.services.ledger, mid,
                            str(charity_partner_id), points, idempotency_key)
            return DonatePointsSuccess(
                operation_id=strawberry.ID(d.operation_id),
                charity_partner_id=strawberry.ID(d.charity_partner_id), points=d.points,
                available=d.available, recorded_at=d.recorded_at)

        result: DonatePointsResult = await answer(c, _DONATE, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Absorb a second account you hold, proven by its card "
                         "number and activation code or by its email and password (tries are "
                         "rate limited): links, lots with their expiry dates, and history move "
                         "here. Scope: member.")
    async def merge_account(self, info: Info[Context, None], idempotency_key: str,
                            card_number: str | None = None, activation_code: str | None = None,
                            email: str | None = None, password: str | None = None
                            ) -> MergeAccountResult:
        c = info.context

        async def run() -> MergeAccountSuccess:
            mid = _member(c)
            member_ops.check_key(idempotency_key)
            s = c.services
            absorbed = await c.run(
                prove_second_account, s.engine, s.ledger.guesses, s.sign_in, mid,
                source=c.source, card_number=card_number, activation_code=activation_code,
                email=email, password=password)
            m = await c.run(member_ops.merge_members, s.engine, s.clock, mid, absorbed,
                            f"member:{mid}", idempotency_key=idempotency_key)
            return MergeAccountSuccess(
                operation_id=strawberry.ID(m.operation_id) if m.operation_id else None,
                wallet_moved=m.wallet, pending_moved=m.pending, debt_moved=m.debt,
                lots_moved=m.lots, brands_moved=[strawberry.ID(p) for p in m.links_moved])

        result: MergeAccountResult = await answer(c, _MERGE, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Everything held about you, as JSON. Scope: member.")
    async def export_my_data(self, info: Info[Context, None]) -> ExportMyDataResult:
        c = info.context

        async def run() -> ExportMyDataSuccess:
            mid = _member(c)
            body = await c.run(export_member, c.services.engine, c.services.clock, mid)
            return ExportMyDataSuccess(json=body)

        result: ExportMyDataResult = await answer(c, _EXPORT, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Erase your account: profile, sign-in and links go; the "
                         "points left are forfeited or donated. Scope: member.")
    async def erase_me(self, info: Info[Context, None], remaining_points: RemainingPoints,
                       charity_partner_id: strawberry.ID | None = None) -> EraseMeResult:
        c = info.context

        async def run() -> EraseMeSuccess:
            mid = _member(c)
            done = await c.run(erasure.erase_member, c.services.ledger, mid,
                               remaining_points.value,
                               str(charity_partner_id) if charity_partner_id else None,
                               f"member:{mid}")
            return EraseMeSuccess(erased_at=done.erased_at, forfeited=done.forfeited,
                                  donated=done.donated, links_closed=done.links_closed)

        result: EraseMeResult = await answer(c, _ERASE, Scope.MEMBER, run)
        return result
