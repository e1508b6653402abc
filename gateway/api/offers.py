"""Partner campaigns over GraphQL (scope ``offers:manage``): create, publish a new version,
end, list, read, and simulate a draft on the last days of earns.

The input types only carry the shape: each input is turned into the plain dict that a campaign
file has (camelCase keys, ``_plain``) and parsed by ``gateway.promotions.manage.parse``, the
same parser as the CLI's, so both refuse the same things with the same field paths. A partner
acts only on its own campaigns; another's, or the coalition's, answers ``NotFound``."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.api.types import Channel, PageInfo
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput
from gateway.promotions import codec, dryrun, manage
from gateway.promotions import model as m

MAX_DAYS = 366


@strawberry.enum(description="Days of the week, for a schedule.")
class Weekday(enum.Enum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


strawberry.enum(m.Trigger, name="CampaignTrigger", description="When a campaign is evaluated.")
strawberry.enum(m.RewardKind, name="TillRewardKind", description="What the till applies.")
strawberry.enum(m.Window, name="LimitWindow", description="A per-member limit's window.")


@strawberry.input(description="Who: conditions about the member (all must hold).")
class AudienceInput:
    tiers: list[str] | None = None
    segment: str | None = None
    birthday_month: bool | None = None


@strawberry.input
class BasketHasInput:
    categories: list[str] | None = None
    skus: list[str] | None = None


@strawberry.input(description="Days and a local time window [start, end), HH:MM.")
class ScheduleInput:
    days: list[Weekday] | None = None
    start: str | None = None
    end: str | None = None
    timezone: str | None = strawberry.field(default=None, description="IANA name; UTC if none.")


@strawberry.input(description="What: conditions about the purchase (all must hold).")
class ConditionsInput:
    min_spend_minor: int | None = None
    basket_has: BasketHasInput | None = None
    schedule: ScheduleInput | None = None
    channels: list[Channel] | None = None
    nth_purchase: int | None = strawberry.field(
        default=None, description="The member's n-th purchase here (1: the first).")
    coupon_presented: bool | None = None
    referral_in_effect: bool | None = None


@strawberry.input
class BonusPointsInput:
    points: int


@strawberry.input(description="factor: an exact ratio string above 1, such as \"2\" or \"1.5\".")
class MultiplierInput:
    factor: str
    categories: list[str] | None = None
    skus: list[str] | None = None


@strawberry.input(description="percent: an exact ratio string, such as \"5\" or \"2.5\".")
class CashbackInput:
    percent: str
    categories: list[str] | None = None
    skus: list[str] | None = None


@strawberry.input
class TillRewardInput:
    kind: m.RewardKind
    code: str
    description: str
    value_minor: int | None = None
    percent: str | None = None


@strawberry.input
class PointsDiscountInput:
    point_value_minor: str


@strawberry.input
class ReferralRewardInput:
    referrer_points: int
    referred_points: int


@strawberry.input(description="Exactly one of its fields is set (GraphQL has no input unions).")
class EffectInput:
    bonus_points: BonusPointsInput | None = None
    multiplier: MultiplierInput | None = None
    cashback: CashbackInput | None = None
    till_reward: TillRewardInput | None = None
    points_discount: PointsDiscountInput | None = None
    referral_reward: ReferralRewardInput | None = None


@strawberry.input
class MemberLimitInput:
    window: m.Window
    points: int | None = None
    count: int | None = None


@strawberry.input
class LimitsInput:
    budget_points: int | None = None
    max_rewards: int | None = None
    per_member: list[MemberLimitInput] | None = None


@strawberry.input
class StackingInput:
    exclusive: bool | None = None
    priority: int | None = None


@strawberry.input(description="A campaign definition (docs/campaigns.md): the same shape as a "
                  "campaign file for the CLI.")
class CampaignInput:
    name: str
    valid_from: datetime
    effects: list[EffectInput]
    id: str | None = strawberry.field(
        default=None, description="Your id for it (a-z, 0-9, '.', '_', '-'): required to "
        "create (a retry with the same definition answers the same version 1); optional when "
        "publishing a version (campaignId names it).")
    description: str | None = None
    trigger: m.Trigger | None = None
    valid_until: datetime | None = None
    channels: list[Channel] | None = None
    audience: AudienceInput | None = None
    conditions: ConditionsInput | None = None
    limits: LimitsInput | None = None
    stacking: StackingInput | None = None
    holdout_percent: int | None = strawberry.field(
        default=None, description="0 to 50: this share of the eligible members, chosen at "
        "random per campaign and member (fixed), never gets it, so its uplift can be measured "
        "(campaignEffectiveness; docs/reports.md).")


# --- results ----------------------------------------------------------------------------------
@strawberry.type(description="One published campaign version, as stored.")
class Campaign:
    id: strawberry.ID
    version: int
    name: str
    description: str
    owner: str
    funder: str
    trigger: m.Trigger
    valid_from: datetime
    valid_until: datetime | None
    partners: list[str]
    channels: list[str]
    budget_points: int | None
    max_rewards: int | None
    exclusive: bool
    priority: int
    published_at: datetime
    holdout_percent: int
    definition: str = strawberry.field(
        description="The whole stored definition, canonical JSON (every condition and effect).")

    @staticmethod
    def of(p: manage.Published) -> Campaign:
        c = p.campaign
        return Campaign(
            id=strawberry.ID(c.id), version=c.version, name=c.name, description=c.description,
            owner=c.owner, funder=c.funder, trigger=c.trigger, valid_from=c.valid_from,
            valid_until=c.valid_until, partners=sorted(c.partners), channels=sorted(c.channels),
            budget_points=c.limits.budget_points, max_rewards=c.limits.max_rewards,
            exclusive=c.stacking.exclusive, priority=c.stacking.priority,
            published_at=p.published_at, holdout_percent=c.holdout_percent,
            definition=codec.dumps(c))


@strawberry.type(description="Version 1 of the new campaign (or, on a retry, the stored one).")
class CreateCampaignSuccess:
    campaign: Campaign


@strawberry.type(description="The version just published.")
class PublishCampaignVersionSuccess:
    campaign: Campaign


@strawberry.type(description="The version that ends it (or the one that already did).")
class EndCampaignSuccess:
    campaign: Campaign


@strawberry.type(description="A campaign with every version, oldest first.")
class CampaignDetails:
    campaign: Campaign
    versions: list[Campaign]


@strawberry.type
class CampaignEdge:
    cursor: str
    node: Campaign


@strawberry.type(description="Your campaigns (latest version of each), by id.")
class CampaignConnection:
    edges: list[CampaignEdge]
    page_info: PageInfo


@strawberry.type(description="An amount rounded once, half-even, from its exact value.")
class DryRunCost:
    amount_minor: int
    currency: str
    exact: str = strawberry.field(description="The exact amount as a ratio, \"p/q\".")


@strawberry.type
class SkipCount:
    reason: str
    operations: int


@strawberry.type(description="What the draft would have done over your last days of earns.")
class CampaignDryRunResult:
    operations_scanned: int
    operations_matched: int
    members_reached: int
    bonus_points: int
    cost: list[DryRunCost]
    budget_points: int | None
    budget_used: int
    skipped: list[SkipCount]
    unknown_facts: list[str] = strawberry.field(
        description="Facts the draft needs that a dry run cannot read (counted as not "
        "matching).")
    operations_with_unknown_facts: int
    notes: list[str]

    @staticmethod
    def of(r: dryrun.CampaignDryRun) -> CampaignDryRunResult:
        return CampaignDryRunResult(
            operations_scanned=r.operations_scanned, operations_matched=r.operations_matched,
            members_reached=r.members_reached, bonus_points=r.bonus_points,
            cost=[DryRunCost(amount_minor=c.minor, currency=c.currency,
                             exact=f"{c.exact.numerator}/{c.exact.denominator}")
                  for c in r.cost],
            budget_points=r.budget_points, budget_used=r.budget_used,
            skipped=[SkipCount(reason=str(k), operations=v) for k, v in sorted(r.skipped.items())],
            unknown_facts=list(r.unknown_facts),
            operations_with_unknown_facts=r.operations_with_unknown_facts,
            notes=list(dryrun.NOTES))


_MANAGE = e.InvalidInputError | e.ForbiddenError
CreateCampaignResult = Annotated[CreateCampaignSuccess | e.CampaignExistsError | _MANAGE,
                                 strawberry.union("CreateCampaignResult")]
PublishCampaignVersionResult = Annotated[PublishCampaignVersionSuccess | e.NotFoundError | _MANAGE,
                                         strawberry.union("PublishCampaignVersionResult")]
EndCampaignResult = Annotated[EndCampaignSuccess | e.NotFoundError | _MANAGE,
                              strawberry.union("EndCampaignResult")]
CampaignResult = Annotated[CampaignDetails | e.NotFoundError | _MANAGE,
                           strawberry.union("CampaignResult")]
CampaignsResult = Annotated[CampaignConnection | _MANAGE, strawberry.union("CampaignsResult")]
SimulateCampaignResult = Annotated[CampaignDryRunResult | _MANAGE,
                                   strawberry.union("SimulateCampaignResult")]


def _plain(value: Any) -> Any:
    """A strawberry input as the plain dict a campaign file has: camelCase keys, enums as
    their values, unset fields left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {to_camel_case(f.name): _plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None
                and not isinstance(getattr(value, f.name), UnsetType)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _actor(c: Context) -> str:
    return f"client:{c.principal.client_id}"


def _parse(c: Context, input: CampaignInput) -> m.Campaign:
    return manage.parse(_plain(input), owner=c.partner_id)


@strawberry.type
class OfferQueries:
    @strawberry.field(description="Your campaigns, latest version of each. Scope: offers:manage.")
    async def campaigns(self, info: Info[Context, None], first: int = 20,
                        after: str | None = None) -> CampaignsResult:
        c = info.context

        async def run() -> CampaignConnection:
            cap = c.services.settings.limits.max_page_size
            if not 1 <= first <= cap:
                raise InvalidInput(f"first must be between 1 and {cap}", field="first")
            page = await c.run(manage.listed, c.services.engine, c.partner_id, first, after)
            edges = [CampaignEdge(cursor=manage.cursor_of(p.campaign.id), node=Campaign.of(p))
                     for p in page.campaigns]
            return CampaignConnection(edges=edges, page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=page.end_cursor))

        result: CampaignsResult = await answer(c, errors_of(CampaignsResult),
                                               Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.field(description="One of your campaigns with every version. "
                      "Scope: offers:manage.")
    async def campaign(self, info: Info[Context, None], id: strawberry.ID) -> CampaignResult:
        c = info.context

        async def run() -> CampaignDetails:
            found = await c.run(manage.versions, c.services.engine, c.partner_id, str(id))
            return CampaignDetails(campaign=Campaign.of(found[-1]),
                                   versions=[Campaign.of(p) for p in found])

        result: CampaignResult = await answer(c, errors_of(CampaignResult),
                                              Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.field(description="What a draft campaign would have issued and cost over your "
                      "last `days` days of earns, as if it had been in force; writes nothing. "
                      "Scope: offers:manage.")
    async def simulate_campaign(self, info: Info[Context, None], input: CampaignInput,
                                days: int = 90) -> SimulateCampaignResult:
        c = info.context

        async def run() -> CampaignDryRunResult:
            if not 1 <= days <= MAX_DAYS:
                raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", field="days")
            draft = _parse(c, input)
            now = c.services.clock.now()
            rules = c.services.rules
            found = await c.run(dryrun.simulate_campaign, c.services.engine, rules.rule, draft,
                                partner_id=c.partner_id, since=now - timedelta(days=days),
                                until=now)
            return CampaignDryRunResult.of(found)

        result: SimulateCampaignResult = await answer(c, errors_of(SimulateCampaignResult),
                                                      Scope.OFFERS_MANAGE, run)
        return result


@strawberry.type
class OfferMutations:
    @strawberry.mutation(description="Create a campaign (version 1), funded by you and applied "
                         "only at you. Scope: offers:manage.")
    async def create_campaign(self, info: Info[Context, None],
                              input: CampaignInput) -> CreateCampaignResult:
        c = info.context

        async def run() -> CreateCampaignSuccess:
            draft = _parse(c, input)
            stored = await c.run(manage.create, c.services.engine, draft, actor=_actor(c),
                                 now=c.services.clock.now())
            return CreateCampaignSuccess(campaign=Campaign.of(stored))

        result: CreateCampaignResult = await answer(c, errors_of(CreateCampaignResult),
                                                    Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="Change a campaign: publishes its next version (past "
                         "operations keep the version they applied). Scope: offers:manage.")
    async def publish_campaign_version(self, info: Info[Context, None], campaign_id: strawberry.ID,
                                       input: CampaignInput) -> PublishCampaignVersionResult:
        c = info.context

        async def run() -> PublishCampaignVersionSuccess:
            stored = await c.run(manage.publish, c.services.engine, c.partner_id,
                                 str(campaign_id), _plain(input), actor=_actor(c),
                                 now=c.services.clock.now())
            return PublishCampaignVersionSuccess(campaign=Campaign.of(stored))

        result: PublishCampaignVersionResult = await answer(
            c, errors_of(PublishCampaignVersionResult), Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="End a campaign at `at` (default now, never in the past): "
                         "publishes a version with that validUntil. Scope: offers:manage.")
    async def end_campaign(self, info: Info[Context, None], campaign_id: strawberry.ID,
                           at: datetime | None = None) -> EndCampaignResult:
        c = info.context

        async def run() -> EndCampaignSuccess:
            stored = await c.run(manage.end, c.services.engine, c.partner_id, str(campaign_id),
                                 at, actor=_actor(c), now=c.services.clock.now())
            return EndCampaignSuccess(campaign=Campaign.of(stored))

        result: EndCampaignResult = await answer(c, errors_of(EndCampaignResult),
                                                 Scope.OFFERS_MANAGE, run)
        return result

