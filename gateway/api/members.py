"""Enrol customers, link them with the member's consent (a link code or a store code); read a
member (balance, history) as the calling partner sees it. Partners see a pairwise
``memberReference``, never the coalition's member id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import COMMON, attempt
from gateway.api.types import Balance, Operation, OperationConnection, OperationEdge, PageInfo
from gateway.core.errors import InvalidInput
from gateway.ledger import history
from gateway.ledger.history import encode_cursor
from gateway.members import linking, service
from gateway.members.service import Membership

MAX_PAGE = 100


@strawberry.federation.type(
    keys=["customerId"],
    description="A coalition member, seen through this partner's customer id. An Apollo "
    "Federation entity keyed by that id (docs/federation.md).")
class Member:
    customer_id: strawberry.ID
    member_reference: strawberry.ID = strawberry.field(
        description="Your own stable reference for this member. Every partner gets a different "
        "one for the same person, so it is useless anywhere else."
    )
    linked_at: datetime
    partner_id: strawberry.Private[str]
    member_id: strawberry.Private[str]

    @staticmethod
    def of(m: Membership) -> Member:
        return Member(customer_id=strawberry.ID(m.customer_id),
                      member_reference=strawberry.ID(m.member_reference), linked_at=m.linked_at,
                      partner_id=m.partner_id, member_id=m.member_id)

    @strawberry.field(description="One balance across every brand the member uses.")
    async def balance(self, info: Info[Context, None]) -> Balance:
        balance = await info.context.loaders.balances.load((self.partner_id, self.member_id))
        return Balance.of(balance)

    @strawberry.field(description="This partner's operations for the member, newest first "
                      f"(at most {MAX_PAGE} per page).")
    async def history(
        self, info: Info[Context, None], first: int = 20, after: str | None = None
    ) -> OperationConnection:
        c = info.context
        cap = min(MAX_PAGE, c.services.settings.limits.max_page_size)
        if not 1 <= first <= cap:
            raise InvalidInput(f"first must be between 1 and {cap}", field="first")
        page = await c.run(history.member_history, c.services.engine, self.partner_id,
                           self.member_id, first, after)
        edges = [OperationEdge(cursor=encode_cursor(v.id), node=Operation.of(v))
                 for v in page.items]
        return OperationConnection(
            edges=edges, page_info=PageInfo(has_next_page=page.has_next,
                                            end_cursor=page.end_cursor))


@strawberry.input
class EnrolCustomerInput:
    customer_id: strawberry.ID = strawberry.field(description="Your own id for the customer.")


@strawberry.input(description="Exactly one of linkCode or storeCode: the member's consent.")
class LinkCustomerInput:
    customer_id: strawberry.ID = strawberry.field(description="Your own id for the customer.")
    link_code: str | None = strawberry.field(
        default=None, description="The one-time code the member made in the coalition's app "
        "or portal (8 characters, valid 10 minutes).")
    store_code: str | None = strawberry.field(
        default=None, description="The store code the member's app shows, scanned (QR text) "
        "or typed (12 digits) at your till.")


@strawberry.type
class EnrolCustomerSuccess:
    member: Member
    created: bool = strawberry.field(description="False when the customer was enrolled already.")
    card_number: str | None = strawberry.field(
        default=None, description="The new member's coalition card number; only in the answer "
        "that created the member (print it on the receipt).")
    activation_code: str | None = strawberry.field(
        default=None, description="One-time code the member claims their account with in the "
        "coalition portal; only in the answer that created the member, never again.")


@strawberry.type
class LinkCustomerSuccess:
    member: Member
    created: bool


ENROL_ERRORS = COMMON
LINK_ERRORS = (*COMMON, e.UnknownMemberError, e.AlreadyLinkedError)
MEMBER_ERRORS = (*COMMON, e.UnknownMemberError)

EnrolCustomerResult = Annotated[
    EnrolCustomerSuccess | e.InvalidInputError | e.ForbiddenError | e.RateLimitedError,
    strawberry.union("EnrolCustomerResult"),
]
LinkCustomerResult = Annotated[
    LinkCustomerSuccess | e.UnknownMemberError | e.AlreadyLinkedError | e.InvalidInputError
    | e.ForbiddenError | e.RateLimitedError,
    strawberry.union("LinkCustomerResult"),
]
MemberResult = Annotated[
    Member | e.UnknownMemberError | e.InvalidInputError | e.ForbiddenError | e.RateLimitedError,
    strawberry.union("MemberResult"),
]


@strawberry.type
class MemberQueries:
    @strawberry.field(description="The member linked to your customer id. Scope: members:read.")
    async def member(self, info: Info[Context, None], customer_id: strawberry.ID) -> MemberResult:
        c = info.context

        async def run() -> Member:
            c.require("members:read")
            found = await c.loaders.memberships.load((c.partner_id, str(customer_id)))
            if found is None:
                from gateway.core.errors import UnknownMember

                raise UnknownMember(f"no member is linked to customer {customer_id!r} here",
                                    field="customerId")
            return Member.of(found)

        result: MemberResult = await attempt(run, MEMBER_ERRORS)
        return result


@strawberry.type
class MemberMutations:
    @strawberry.mutation(description="Create a coalition member for your customer (idempotent by "
                         "customer id). Scope: members:link.")
    async def enrol_customer(
        self, info: Info[Context, None], input: EnrolCustomerInput
    ) -> EnrolCustomerResult:
        c = info.context

        async def run() -> EnrolCustomerSuccess:
            c.require("members:link")
            m = await c.run(service.enrol_customer, c.services.engine, c.services.clock,
                            c.partner_id, str(input.customer_id))
            return EnrolCustomerSuccess(member=Member.of(m), created=m.created,
                                        card_number=m.card_number,
                                        activation_code=m.activation_code)

        result: EnrolCustomerResult = await attempt(run, ENROL_ERRORS)
        return result

    @strawberry.mutation(description="Link your customer to a coalition member who consented: "
                         "with a link code they made or a store code they showed. A wrong, "
                         "expired or used code is UNKNOWN_MEMBER; attempts are rate limited. "
                         "Scope: members:link.")
    async def link_customer(
        self, info: Info[Context, None], input: LinkCustomerInput
    ) -> LinkCustomerResult:
        c = info.context

        async def run() -> LinkCustomerSuccess:
            c.require("members:link")
            m = await c.run(linking.link_customer, c.services.engine, c.services.clock,
                            c.services.ledger.guesses, c.partner_id, str(input.customer_id),
                            link_code=input.link_code, store_code=input.store_code)
            return LinkCustomerSuccess(member=Member.of(m), created=m.created)

        result: LinkCustomerResult = await attempt(run, LINK_ERRORS)
        return result
