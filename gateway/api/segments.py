"""Partners' segments over GraphQL (scope ``offers:manage``): define one, list yours with their
member counts. A segment is a rule over purchases across the coalition's brands, computed by
``gateway segments refresh`` over consenting members only; a partner reads counts (below 5
shown as ``"<5"``), never who is in it and never another brand's purchases. A campaign whose
audience names the segment is the personal offer (docs/campaigns.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.auth.scopes import Scope
from gateway.promotions import segments as domain


@strawberry.input(description="One condition on a member's purchases (earns): set `at` (with "
                  "`minPurchases`, default 1) or `neverAt`, over the last `days` days.")
class SegmentClauseInput:
    at: strawberry.ID | None = None
    never_at: strawberry.ID | None = None
    min_purchases: int | None = None
    days: int


@strawberry.input(description="A segment: every clause must hold.")
class DefineSegmentInput:
    id: str = strawberry.field(description="Your id: 1 to 48 of a-z 0-9 . _ - (stored as "
                               "yourPartnerId:id).")
    name: str
    clauses: list[SegmentClauseInput]


@strawberry.type(description="How many consenting members a segment holds, as of its last "
                 "refresh. Never who they are.")
class Segment:
    id: strawberry.ID
    name: str
    rule: str = strawberry.field(description="The clauses, canonical JSON.")
    member_count: str = strawberry.field(description=(
        f"Members in it at the last refresh; fewer than {domain.MIN_SHOWN} show as "
        f"\"<{domain.MIN_SHOWN}\"."))
    refreshed_at: datetime | None = strawberry.field(
        description="The last refresh; null: not refreshed since it was defined.")

    @staticmethod
    def of(s: domain.Segment) -> Segment:
        return Segment(id=strawberry.ID(s.id), name=s.name, rule=domain.rule_to_json(s.clauses),
                       member_count=s.shown_count, refreshed_at=s.refreshed_at)


@strawberry.type
class DefineSegmentSuccess:
    segment: Segment


@strawberry.type
class SegmentList:
    segments: list[Segment]


_MANAGE = e.InvalidInputError | e.ForbiddenError
DefineSegmentResult = Annotated[DefineSegmentSuccess | _MANAGE,
                                strawberry.union("DefineSegmentResult")]
SegmentsResult = Annotated[SegmentList | _MANAGE, strawberry.union("SegmentsResult")]


@strawberry.type
class SegmentQueries:
    @strawberry.field(description=f"Your segments (at most {domain.MAX_SEGMENTS}) with their "
                      "member counts. Scope: offers:manage.")
    async def segments(self, info: Info[Context, None]) -> SegmentsResult:
        c = info.context

        async def run() -> SegmentList:
            found = await c.run(domain.listed, c.services.engine, c.partner_id)
            return SegmentList(segments=[Segment.of(s) for s in found])

        result: SegmentsResult = await answer(c, errors_of(SegmentsResult),
                                              Scope.OFFERS_MANAGE, run)
        return result


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(description="Define a segment for personal offers (members counted at "
                         "the next refresh). The same definition again answers the stored one. "
                         "Scope: offers:manage.")
    async def define_segment(self, info: Info[Context, None],
                             input: DefineSegmentInput) -> DefineSegmentResult:
        c = info.context

        async def run() -> DefineSegmentSuccess:
            clauses = domain.parse_clauses([
                {"at": k.at, "neverAt": k.never_at, "minPurchases": k.min_purchases,
                 "days": k.days} for k in input.clauses])
            stored = await c.run(domain.define, c.services.engine, c.partner_id, input.id,
                                 input.name, clauses, actor=f"client:{c.principal.client_id}",
                                 now=c.services.clock.now())
            return DefineSegmentSuccess(segment=Segment.of(stored))

        result: DefineSegmentResult = await answer(c, errors_of(DefineSegmentResult),
                                                   Scope.OFFERS_MANAGE, run)
        return result
