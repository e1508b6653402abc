"""Enrol customers, link them with the member's consent (a link code or a store code); read a
member (balance, history) as the calling partner sees it. Partners see a pairwise
``memberReference``, never the coalition's member id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import Resolver, answer, errors_of
from gateway.api.types import Balance, Operation, OperationConnection, OperationEdge, PageInfo
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput, UnknownMember
from gateway.core.ids import CustomerId, PartnerId
from gateway.ledger import enrolment, history
from gateway.ledger.history import encode_cursor
from gateway.members import linking
from gateway.members.service import Membership
from gateway.promotions import tiers

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

    @strawberry.field(description="The member's coalition tier now (its name, such as "
                      "\"Gold\"), earned across every brand; null when the coalition runs no "
                      "tier programme. How it was reached is the member's own business.")
    async def tier(self, info: Info[Context, None]) -> str | None:
        c = info.context
        found = await c.run(tiers.member_status, c.services.engine, c.services.ledger.tiers,
                            self.member_id, c.services.clock.now())
        return None if found is None else found.tier.name

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
    referral_code: str | None = strawberry.field(
        default=None, description="The referral code of the member who referred this new "
        "customer (counts only when this call creates the member).")


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


EnrolCustomerResult = Annotated[
    EnrolCustomerSuccess | e.InvalidInputError | e.ForbiddenError | e.RateLimitedError
    | e.ReferralRefusedError | e.SelfReferralError | e.AlreadyReferredError,
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


_MEMBER_ERRORS = errors_of(MemberResult)
_LinkCommand = tuple[PartnerId, CustomerId, str | None, str | None]
_ENROL: Resolver[EnrolCustomerInput, tuple[PartnerId, CustomerId, str | None],
                 Membership] = Resolver(
    EnrolCustomerResult, Scope.MEMBERS_LINK,
    command=lambda c, input: (c.partner_id, CustomerId(str(input.customer_id)),
                              input.referral_code),
    service=lambda s, cmd: enrolment.enrol_customer(s.engine, s.clock, cmd[0], cmd[1],
                                                    ledger=s.ledger, referral_code=cmd[2]),
    present=lambda m: EnrolCustomerSuccess(member=Member.of(m), created=m.created,
                                           card_number=m.card_number,
                                           activation_code=m.activation_code))
_LINK: Resolver[LinkCustomerInput, _LinkCommand, Membership] = Resolver(
    LinkCustomerResult, Scope.MEMBERS_LINK,
    command=lambda c, input: (c.partner_id, CustomerId(str(input.customer_id)), input.link_code,
                              input.store_code),
    service=lambda s, cmd: linking.link_customer(
        s.engine, s.clock, s.ledger.guesses, cmd[0], cmd[1], link_code=cmd[2],
        store_code=cmd[3]),
    present=lambda m: LinkCustomerSuccess(member=Member.of(m), created=m.created))


def asks_for(info: Info[Context, None], name: str) -> bool:
    """Whether the query selects field ``name`` directly under this field (through fragments
    too), e.g. ``member { ... on Member { balance { available } } }``. Walks graphql-core's
    syntax tree: strawberry's ``info.selected_fields`` converts the whole subtree first and cost
    ~190 us a request, more than a thread hop."""
    raw = info._raw_info  # graphql-core's GraphQLResolveInfo: field_nodes and fragments
    stack: list[SelectionSetNode | None] = [node.selection_set for node in raw.field_nodes]
    while stack:
        selection_set = stack.pop()
        for child in selection_set.selections if selection_set else ():
            if isinstance(child, FieldNode):
                if child.name.value == name:
                    return True
            elif isinstance(child, InlineFragmentNode):
                stack.append(child.selection_set)
            elif isinstance(child, FragmentSpreadNode):
                fragment = raw.fragments.get(child.name.value)
                stack.append(fragment.selection_set if fragment else None)
    return False


@strawberry.type
class MemberQueries:
    @strawberry.field(description="The member linked to your customer id. Scope: members:read.")
    async def member(self, info: Info[Context, None], customer_id: strawberry.ID) -> MemberResult:
        c = info.context

        async def run() -> Member:
            # Asked for the balance too: read both in one call (gateway/api/loaders.py).
            loader = (c.loaders.memberships_with_balances if asks_for(info, "balance")
                      else c.loaders.memberships)
            found = await loader.load((c.partner_id, str(customer_id)))
            if found is None:
                raise UnknownMember(f"no member is linked to customer {customer_id!r} here",
                                    field="customerId")
            return Member.of(found)

        result: MemberResult = await answer(c, _MEMBER_ERRORS, Scope.MEMBERS_READ, run)
        return result


@strawberry.type
class MemberMutations:
    @strawberry.mutation(description="Create a coalition member for your customer (idempotent by "
                         "customer id). Scope: members:link.")
    async def enrol_customer(
        self, info: Info[Context, None], input: EnrolCustomerInput
    ) -> EnrolCustomerResult:
        result: EnrolCustomerResult = await _ENROL(info, input)
        return result

    @strawberry.mutation(description="Link your customer to a coalition member who consented: "
                         "with a link code they made or a store code they showed. A wrong, "
                         "expired or used code is UNKNOWN_MEMBER; attempts are rate limited. "
                         "Scope: members:link.")
    async def link_customer(
        self, info: Info[Context, None], input: LinkCustomerInput
    ) -> LinkCustomerResult:
        result: LinkCustomerResult = await _LINK(info, input)
        return result
