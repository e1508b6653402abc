"""``viewer``: the member's own API on the shared /graphql, for member tokens only (scope
``member``). A partner token calling it, or a member token calling a partner field, gets a typed
FORBIDDEN. Every read is the token's own member; nothing here takes a member id as input."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.challenges import Badge, ChallengeProgress, member_badges, member_challenges
from gateway.api.context import Context
from gateway.api.draws import MemberDraw, viewer_draws
from gateway.api.notifications import (
    NotificationConnection,
    NotificationPreferences,
    feed_of,
    preferences_of,
)
from gateway.api.results import answer, errors_of
from gateway.api.types import PageInfo
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput
from gateway.ledger import balances, history
from gateway.ledger.history import encode_cursor
from gateway.members import consent as codes
from gateway.members import viewer as domain
from gateway.promotions import referrals, tiers

MAX_PAGE = 100


@strawberry.type(description="Points earned, waiting out a return window until releaseAt.")
class PendingRelease:
    release_at: datetime
    points: int


@strawberry.type(description="Points that expire at the end of one day.")
class ExpiringPoints:
    date: date
    points: int


@strawberry.type(description="The member's points across every brand.")
class Wallet:
    available: int = strawberry.field(description="Spendable now.")
    held: int = strawberry.field(description="Authorised at a till, not yet captured.")
    debt: int = strawberry.field(description="Owed after a return; repaid from future earns.")
    pending: int = strawberry.field(description="Earned, waiting out a return window.")
    pending_releases: list[PendingRelease]
    expiring: list[ExpiringPoints] = strawberry.field(
        description=f"Points expiring per day over the next {balances.EXPIRING_DAYS} days.")

    @staticmethod
    def of(w: balances.Wallet) -> Wallet:
        b = w.balance
        return Wallet(available=b.available, held=b.held, debt=b.debt, pending=b.pending,
                      pending_releases=[PendingRelease(release_at=at, points=p)
                                        for at, p in w.pending],
                      expiring=[ExpiringPoints(date=d, points=p) for d, p in w.expiring])


@strawberry.type(description="One operation on the member's points, at any brand.")
class MemberOperation:
    id: strawberry.ID
    partner_id: strawberry.ID
    partner_name: str
    kind: str
    channel: str | None
    points: int = strawberry.field(description=(
        "The operation's own amount, signed: + for points gained, - for points taken or set "
        "aside. A capture shows the points captured and an earn the points earned, even when "
        "part of them only released a hold or repaid debt: it is not the change to available "
        "points."))
    occurred_at: datetime
    recorded_at: datetime
    explanation: list[str] = strawberry.field(description="Why: how the points were worked out.")

    @staticmethod
    def of(v: history.HistoryItem) -> MemberOperation:
        return MemberOperation(id=strawberry.ID(v.id), partner_id=strawberry.ID(v.partner_id),
                               partner_name=v.partner_name, kind=v.kind, channel=v.channel,
                               points=v.points, occurred_at=v.occurred_at,
                               recorded_at=v.recorded_at, explanation=list(v.explanation))


@strawberry.type
class MemberOperationEdge:
    cursor: str
    node: MemberOperation


@strawberry.type(description="A page of the member's operations, newest first.")
class MemberOperationConnection:
    edges: list[MemberOperationEdge]
    page_info: PageInfo


@strawberry.type(description="A brand the member's account is linked to.")
class LinkedBrand:
    partner_id: strawberry.ID
    partner_name: str
    linked_at: datetime
    consent_via: str | None = strawberry.field(
        description="How the member consented: enrolment, oauth, link_code, store_code, ...")


@strawberry.enum(description="What a consent is for.")
class ConsentPurpose(Enum):
    MARKETING = "marketing"
    PURCHASE_HISTORY = "purchase_history"
    # The coalition's own offers and birthday greetings (feed and email); no partner.
    COALITION_MARKETING = "coalition_marketing"


@strawberry.type(description="The member's latest choice for one purpose (and partner).")
class Consent:
    purpose: str
    partner_id: strawberry.ID | None
    partner_name: str | None
    granted: bool
    at: datetime
    via: str

    @staticmethod
    def of(c: domain.ConsentState) -> Consent:
        return Consent(purpose=c.purpose, partner_id=strawberry.ID(c.partner_id)
                       if c.partner_id else None, partner_name=c.partner_name,
                       granted=c.granted, at=c.at, via=c.via)


@strawberry.type(description="A rotating store code to show at a till (about a minute).")
class StoreCode:
    digits: str = strawberry.field(description="For typing at a till: three groups of four.")
    qr_text: str = strawberry.field(description="What the QR code encodes (signed).")
    expires_at: datetime


@strawberry.type(description="The member's coalition tier, from qualifying points: the base "
                 "points earned at every brand over the last 12 calendar months (bonus points do "
                 "not qualify).")
class MemberTier:
    id: str = strawberry.field(description="What campaigns name: silver, gold, platinum.")
    name: str
    qualifying_points: int = strawberry.field(
        description="Over the window (the current month and the 11 before it, UTC).")
    next_tier: str | None = strawberry.field(description="The next tier's name; null at the top.")
    points_to_next: int | None = strawberry.field(
        description="Qualifying points still needed for the next tier.")
    valid_until: datetime | None = strawberry.field(
        description="When the tier falls if nothing more is earned (old months leave the "
        "window); null for the first tier.")

    @staticmethod
    def of(s: tiers.TierStatus) -> MemberTier:
        return MemberTier(id=s.tier.id, name=s.tier.name, qualifying_points=s.qualifying_points,
                          next_tier=None if s.next_tier is None else s.next_tier.name,
                          points_to_next=s.points_to_next, valid_until=s.valid_until)


@strawberry.type(description="The signed-in member. Scope: member.")
class Viewer:
    card_number: str
    member_id: strawberry.Private[str]

    @strawberry.field
    async def wallet(self, info: Info[Context, None]) -> Wallet:
        c = info.context
        return Wallet.of(await c.run(balances.wallet, c.services.engine, c.services.clock,
                                     self.member_id))

    @strawberry.field(description="Your coalition tier now; null when the coalition runs no "
                      "tier programme.")
    async def tier(self, info: Info[Context, None]) -> MemberTier | None:
        c = info.context
        found = await c.run(tiers.member_status, c.services.engine, c.services.ledger.tiers,
                            self.member_id, c.services.clock.now())
        return None if found is None else MemberTier.of(found)

    @strawberry.field(description=f"Operations at every brand, newest first (at most {MAX_PAGE} "
                      "per page).")
    async def history(self, info: Info[Context, None], first: int = 20,
                      after: str | None = None) -> MemberOperationConnection:
        c = info.context
        cap = min(MAX_PAGE, c.services.settings.limits.max_page_size)
        if not 1 <= first <= cap:
            raise InvalidInput(f"first must be between 1 and {cap}", field="first")
        page = await c.run(history.history, c.services.engine, self.member_id, first, after)
        return MemberOperationConnection(
            edges=[MemberOperationEdge(cursor=encode_cursor(v.id), node=MemberOperation.of(v))
                   for v in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor))

    @strawberry.field
    async def linked_brands(self, info: Info[Context, None]) -> list[LinkedBrand]:
        c = info.context
        found = await c.run(domain.linked_brands, c.services.engine, self.member_id)
        return [LinkedBrand(partner_id=strawberry.ID(b.partner_id), partner_name=b.partner_name,
                            linked_at=b.linked_at, consent_via=b.via) for b in found]

    @strawberry.field(description="A fresh store code, bound to you, valid about a minute; "
                      "each read issues a new one (show it at the till as a QR or digits).")
    async def store_code(self, info: Info[Context, None]) -> StoreCode:
        c = info.context
        code = await c.run(codes.issue_store_code, c.services.engine, c.services.clock,
                           self.member_id)
        return StoreCode(digits=code.digits, qr_text=code.qr_text, expires_at=code.expires_at)

    @strawberry.field(description="Your referral code: give it to a friend; when they enrol "
                      "with it (or record it) and make a qualifying purchase, you both get the "
                      "brand's referral reward. It never changes.")
    async def referral_code(self, info: Info[Context, None]) -> str:
        c = info.context
        found: str = await c.run(referrals.my_code, c.services.engine, self.member_id,
                                 c.services.clock.now())
        return found

    @strawberry.field
    async def consents(self, info: Info[Context, None]) -> list[Consent]:
        c = info.context
        found = await c.run(domain.consent_states, c.services.engine, self.member_id)
        return [Consent.of(x) for x in found]

    @strawberry.field(description=f"Your notifications, newest first (at most {MAX_PAGE} per "
                      "page): points, expiring points, tier changes, and offers and birthday "
                      "greetings if you consented.")
    async def notifications(self, info: Info[Context, None], first: int = 20,
                            after: str | None = None) -> NotificationConnection:
        return await feed_of(info.context, self.member_id, first, after)

    @strawberry.field
    async def notification_preferences(self, info: Info[Context, None]
                                       ) -> NotificationPreferences:
        return await preferences_of(info.context, self.member_id)

    @strawberry.field(description="Prize draws open now and the draws you entered (at most 100 "
                      "of each): your entries, your pseudonymous entrant id, and once closed "
                      "the revealed seed, the winners and what you won.")
    async def draws(self, info: Info[Context, None]) -> list[MemberDraw]:
        return await viewer_draws(info.context, self.member_id)

    @strawberry.field(description="Your progress in every challenge running now (issue 13).")
    async def challenges(self, info: Info[Context, None]) -> list[ChallengeProgress]:
        return await member_challenges(info.context, self.member_id)

    @strawberry.field(description="The badges you earned; kept even if a later window is missed.")
    async def badges(self, info: Info[Context, None]) -> list[Badge]:
        return await member_badges(info.context, self.member_id)


ViewerResult = Annotated[Viewer | e.UnknownMemberError | e.InvalidInputError | e.ForbiddenError
                         | e.RateLimitedError, strawberry.union("ViewerResult")]
_VIEWER_ERRORS = errors_of(ViewerResult)


async def viewer_of(c: Context) -> Viewer:
    member_id = c.member_id
    card = await c.run(domain.card_number, c.services.engine, member_id)
    return Viewer(card_number=card, member_id=member_id)


@strawberry.type
class ViewerQueries:
    @strawberry.field(description="The signed-in member's own account; member tokens only. "
                      "Scope: member.")
    async def viewer(self, info: Info[Context, None]) -> ViewerResult:
        c = info.context
        result: ViewerResult = await answer(c, _VIEWER_ERRORS, Scope.MEMBER,
                                            lambda: viewer_of(c))
        return result
