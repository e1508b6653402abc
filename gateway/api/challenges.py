"""Challenges over GraphQL: a partner defines, ends and lists its own (scope ``offers:manage``;
another brand's challenge looks missing, counts are counts of members, never their purchases);
a member reads ``viewer.challenges`` and ``viewer.badges`` (scope ``member``). The rules are in
``gateway.challenges`` (docs/challenges.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.api.types import Money, MoneyInput
from gateway.auth.scopes import Scope
from gateway.challenges import parsing
from gateway.challenges import repository as repo
from gateway.challenges import service as domain
from gateway.challenges.model import Challenge, Count, WindowKind

strawberry.enum(WindowKind, name="ChallengeWindow", description="A challenge's window: the "
                "calendar month, `days` from the first qualifying purchase, or consecutive ISO "
                "weeks.")
strawberry.enum(Count, name="ChallengeCount", description="What a challenge counts.")


@strawberry.input(description="A challenge at your brand (docs/challenges.md). Immutable once "
                  "it has started: define it again unchanged and the stored one answers.")
class ChallengeInput:
    id: str = strawberry.field(description="Your id: 1 to 40 of a-z 0-9 - (stored as "
                               "yourPartnerId:id).")
    name: str
    badge: str = strawberry.field(description="The badge a completion gives: 1 to 32 of a-z "
                                  "0-9 -.")
    bonus_points: int = strawberry.field(description="Paid on completion, funded by you.")
    window: WindowKind
    count: Count = strawberry.field(description="PURCHASES (MONTH or ROLLING) or WEEKS "
                                    "(STREAK); BRANDS is the coalition's only.")
    target: int
    starts_at: datetime
    days: int | None = strawberry.field(default=None, description="ROLLING only: its length.")
    min_spend: MoneyInput | None = strawberry.field(
        default=None, description="A purchase counts from this amount (net of returns).")
    ends_at: datetime | None = None

    def raw(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id, "name": self.name, "badge": self.badge,
            "bonus_points": self.bonus_points, "window": str(self.window),
            "count": str(self.count), "target": self.target, "starts_at": self.starts_at,
            "days": self.days, "ends_at": self.ends_at}
        if self.min_spend is not None:
            found["min_spend_minor"] = int(self.min_spend.amount_minor)
            found["currency"] = self.min_spend.currency
        return {k: v for k, v in found.items() if v is not None}


_FIELDS = {"min_spend_minor": "minSpend.amountMinor", "currency": "minSpend.currency"}


def field_name(field: str) -> str:
    return _FIELDS.get(field) or parsing.camel(field)


@strawberry.input
class EndChallengeInput:
    id: str
    at: datetime | None = strawberry.field(default=None, description="Default: now. Never in "
                                           "the past.")


@strawberry.type(description="One of your challenges, with how many members are in it.")
class PartnerChallenge:
    id: strawberry.ID
    version: int
    name: str
    badge: str
    bonus_points: int
    window: WindowKind
    days: int | None
    count: Count
    target: int
    min_spend: Money | None
    starts_at: datetime
    ends_at: datetime | None
    members_in_progress: int = strawberry.field(
        description="Members with progress in a window still open, not completed.")
    members_completed: int = strawberry.field(description="Members who completed it at least "
                                              "once.")

    @staticmethod
    def of(c: Challenge, in_progress: int = 0, completed: int = 0) -> PartnerChallenge:
        return PartnerChallenge(
            id=strawberry.ID(parsing.local_id(c)), version=c.version, name=c.name,
            badge=c.badge, bonus_points=c.bonus_points, window=c.window, days=c.days,
            count=c.count, target=c.target, min_spend=_money(c), starts_at=c.starts_at,
            ends_at=c.ends_at, members_in_progress=in_progress, members_completed=completed)


def _money(c: Challenge) -> Money | None:
    if c.min_spend_minor is None or c.currency is None:
        return None
    return Money(amount_minor=c.min_spend_minor, currency=c.currency)


@strawberry.type
class DefineChallengeSuccess:
    challenge: PartnerChallenge


@strawberry.type
class EndChallengeSuccess:
    challenge: PartnerChallenge


@strawberry.type
class ChallengeList:
    challenges: list[PartnerChallenge]


_MANAGE = e.InvalidInputError | e.ForbiddenError
DefineChallengeResult = Annotated[
    DefineChallengeSuccess | e.ChallengeStartedError | e.NotFoundError | _MANAGE,
    strawberry.union("DefineChallengeResult")]
EndChallengeResult = Annotated[EndChallengeSuccess | e.NotFoundError | _MANAGE,
                               strawberry.union("EndChallengeResult")]
ChallengesResult = Annotated[ChallengeList | _MANAGE, strawberry.union("ChallengesResult")]


@strawberry.type
class ChallengeQueries:
    @strawberry.field(description="Your challenges with their member counts. Scope: "
                      "offers:manage.")
    async def challenges(self, info: Info[Context, None]) -> ChallengesResult:
        c = info.context

        async def run() -> ChallengeList:
            found = await c.run(domain.owned, c.services.engine, c.partner_id,
                                c.services.clock.now())
            return ChallengeList(challenges=[
                PartnerChallenge.of(o.challenge, o.members_in_progress, o.members_completed)
                for o in found])

        result: ChallengesResult = await answer(c, errors_of(ChallengesResult),
                                                Scope.OFFERS_MANAGE, run)
        return result


@strawberry.type
class ChallengeMutations:
    @strawberry.mutation(description="Define a challenge at your brand, funded by you; the same "
                         "definition again answers the stored one; a changed one is a new "
                         "version until it starts (then CHALLENGE_STARTED). Scope: "
                         "offers:manage.")
    async def define_challenge(self, info: Info[Context, None],
                               input: ChallengeInput) -> DefineChallengeResult:
        c = info.context

        async def run() -> DefineChallengeSuccess:
            stored = await c.run(domain.define, c.services.engine, input.raw(),
                                 owner=c.partner_id, actor=f"client:{c.principal.client_id}",
                                 now=c.services.clock.now(), field_name=field_name)
            return DefineChallengeSuccess(challenge=PartnerChallenge.of(stored))

        result: DefineChallengeResult = await answer(c, errors_of(DefineChallengeResult),
                                                     Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="End one of your challenges (default now; never in the "
                         "past). Windows already counted keep what they counted. Scope: "
                         "offers:manage.")
    async def end_challenge(self, info: Info[Context, None],
                            input: EndChallengeInput) -> EndChallengeResult:
        c = info.context

        async def run() -> EndChallengeSuccess:
            stored = await c.run(domain.end, c.services.engine, c.partner_id, input.id,
                                 input.at, actor=f"client:{c.principal.client_id}",
                                 now=c.services.clock.now())
            return EndChallengeSuccess(challenge=PartnerChallenge.of(stored))

        result: EndChallengeResult = await answer(c, errors_of(EndChallengeResult),
                                                  Scope.OFFERS_MANAGE, run)
        return result


# --- the member's view (fields of ``Viewer``) -------------------------------------------------
@strawberry.type(description="Your progress in a challenge running now.")
class ChallengeProgress:
    id: strawberry.ID
    name: str
    owner: str = strawberry.field(description="Who offers it and funds the bonus: a partner "
                                  "id, or coalition.")
    window: WindowKind
    done: int
    target: int
    window_ends_at: datetime | None = strawberry.field(
        description="Until when this window counts (a streak: buy before then to keep it); "
        "null: the window opens with your next qualifying purchase.")
    bonus_points: int
    badge: str
    completed: bool = strawberry.field(description="This window is complete (the bonus paid).")

    @staticmethod
    def of(p: domain.MemberProgress) -> ChallengeProgress:
        c = p.challenge
        return ChallengeProgress(id=strawberry.ID(c.id), name=c.name, owner=c.owner,
                                 window=c.window, done=p.done, target=c.target,
                                 window_ends_at=p.window_ends_at, bonus_points=c.bonus_points,
                                 badge=c.badge, completed=p.completed)


@strawberry.type(description="A badge you earned, kept whatever later windows bring.")
class Badge:
    badge: str
    times: int = strawberry.field(description="How many completions gave it.")
    first_awarded_at: datetime
    last_awarded_at: datetime

    @staticmethod
    def of(b: repo.BadgeCount) -> Badge:
        return Badge(badge=b.badge, times=b.times, first_awarded_at=b.first_awarded_at,
                     last_awarded_at=b.last_awarded_at)


async def member_challenges(c: Context, member_id: str) -> list[ChallengeProgress]:
    found = await c.run(domain.member_challenges, c.services.engine, member_id,
                        c.services.clock.now())
    return [ChallengeProgress.of(p) for p in found]


async def member_badges(c: Context, member_id: str) -> list[Badge]:
    found = await c.run(domain.member_badges, c.services.engine, member_id)
    return [Badge.of(b) for b in found]
