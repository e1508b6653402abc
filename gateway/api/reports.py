"""Effectiveness reports over GraphQL and as pages (issue 13, decision 034).

* ``campaignEffectiveness(campaignId)`` / ``campaignsEffectiveness``: scope ``reports:read``; a
  partner-bound token reads its own campaigns (another partner's is ``NotFoundError``, exactly
  like a missing one), a coalition-wide one every campaign.
* ``programmeReport(start, end)``: scope ``settlement:read`` and no partner binding (finance).
* Pages: ``GET /reports/programme?start=…&end=…[&format=csv]`` (settlement:read, coalition-wide)
  and ``GET /reports/campaigns[?campaignId=…][&format=csv]`` (reports:read), with a bearer
  token, charged to the client's rate limit like the settlement page.

Points and minor units are ``BigInt``; means, the uplift and its interval are decimal strings of
minor units (rounded once, half-even, at 0.01), ratios decimal strings."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import datetime
from fractions import Fraction
from typing import Annotated

import strawberry
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.bigint import BigInt
from gateway.api.context import Context, Services
from gateway.api.results import answer, errors_of
from gateway.api.settlement import plotly_path
from gateway.api.view import rate_limited
from gateway.auth.scopes import Scope
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken
from gateway.core.errors import DomainError, Forbidden, InvalidInput
from gateway.core.principal import Principal
from gateway.limits import RateLimiter
from gateway.reports import effectiveness as fx
from gateway.reports import programme as pr
from gateway.reports import render, service
from gateway.reports.stats import decimal
from gateway.settlement.model import Period


@strawberry.type(description="Spend per eligible member at the campaign's partners in its "
                 "window, treated vs holdout, in one currency (minor units).")
class Uplift:
    currency: str
    treated_members: int
    holdout_members: int
    treated_spend_minor: BigInt
    holdout_spend_minor: BigInt
    treated_mean_minor: str | None
    holdout_mean_minor: str | None
    uplift_minor: str | None = strawberry.field(
        description="Mean treated minus mean holdout (per member).")
    ci95_low_minor: str | None = strawberry.field(
        description="Welch's 95 % interval of the uplift; null with fewer than two members "
        "in a group.")
    ci95_high_minor: str | None
    degrees_of_freedom: str | None


@strawberry.type(description="What a campaign gave, what it cost and what it changed.")
class CampaignEffectiveness:
    campaign_id: strawberry.ID
    name: str
    owner: str
    window_start: datetime
    window_end: datetime
    holdout_percent: int
    members_reached: BigInt
    rewards: BigInt
    points_issued: BigInt
    cost_minor: BigInt = strawberry.field(description="In the settlement currency, priced "
                                          "like settlement prices the funder's points.")
    settlement_currency: str
    redemptions: BigInt = strawberry.field(description="Redemptions by reached members in "
                                           "the window (any partner).")
    points_redeemed: BigInt
    treated_members: BigInt
    holdout_members: BigInt
    excluded_members: BigInt
    uplift: list[Uplift]

    @staticmethod
    def of(x: fx.Effectiveness) -> CampaignEffectiveness:
        return CampaignEffectiveness(
            campaign_id=strawberry.ID(x.item.id), name=x.item.name, owner=x.item.owner,
            window_start=x.window_start, window_end=x.window_end,
            holdout_percent=x.item.holdout_percent, members_reached=x.members_reached,
            rewards=x.rewards, points_issued=x.points_issued, cost_minor=x.cost_minor,
            settlement_currency=x.settlement_currency, redemptions=x.redemptions,
            points_redeemed=x.points_redeemed, treated_members=x.treated_members,
            holdout_members=x.holdout_members, excluded_members=x.excluded_members,
            uplift=[Uplift(
                currency=u.currency, treated_members=u.treated.n, holdout_members=u.holdout.n,
                treated_spend_minor=u.treated.total, holdout_spend_minor=u.holdout.total,
                treated_mean_minor=_d(u.treated.mean), holdout_mean_minor=_d(u.holdout.mean),
                uplift_minor=_s(u.interval.difference), ci95_low_minor=_s(u.interval.low),
                ci95_high_minor=_s(u.interval.high),
                degrees_of_freedom=_s(u.interval.degrees_of_freedom)) for u in x.uplift])


@strawberry.type(description="Every campaign you see, and the same as CSV.")
class CampaignEffectivenessList:
    campaigns: list[CampaignEffectiveness]
    csv: str


@strawberry.type
class ProgrammePartner:
    partner_id: strawberry.ID
    earned_points: BigInt
    burned_points: BigInt
    returned_points: BigInt
    expired_points: BigInt
    outstanding_points: BigInt = strawberry.field(
        description="Points members still hold that this partner issued (lots remaining).")


@strawberry.type(description="A monthly cohort: members by the month of their first earn.")
class RetentionCohort:
    month: str
    members: BigInt
    active: list[BigInt] = strawberry.field(
        description="Members active in the cohort's month + 0, + 1, ... up to the period's end.")


@strawberry.type(description="The programme over [start, end): the coalition's figures.")
class ProgrammeReport:
    period_start: datetime
    period_end: datetime
    active_members: BigInt
    cross_brand_members: BigInt
    earned_points: BigInt
    burned_points: BigInt
    expired_points: BigInt
    earn_burn_ratio: str | None
    breakage: str | None = strawberry.field(description="Points expired / points issued.")
    outstanding_points: BigInt
    held_points: BigInt
    debt_points: BigInt
    partners: list[ProgrammePartner]
    cohorts: list[RetentionCohort]
    csv: str

    @staticmethod
    def of(r: pr.ProgrammeReport) -> ProgrammeReport:
        owed = {x.partner_id: x.points for x in r.liability}
        flows = {f.partner_id: f for f in r.flows}
        return ProgrammeReport(
            period_start=r.period.start, period_end=r.period.end,
            active_members=r.active_members, cross_brand_members=r.cross_brand_members,
            earned_points=r.earned_points, burned_points=r.burned_points,
            expired_points=r.expired_points,
            earn_burn_ratio=render.ratio(r.earn_burn_ratio) or None,
            breakage=render.ratio(r.breakage) or None, outstanding_points=r.liability_points,
            held_points=r.held_points, debt_points=r.debt_points,
            partners=[ProgrammePartner(
                partner_id=strawberry.ID(p),
                earned_points=flows[p].earned_points if p in flows else 0,
                burned_points=flows[p].burned_points if p in flows else 0,
                returned_points=flows[p].returned_points if p in flows else 0,
                expired_points=flows[p].expired_points if p in flows else 0,
                outstanding_points=owed.get(p, 0)) for p in sorted(set(flows) | set(owed))],
            cohorts=[RetentionCohort(month=c.month, members=c.members, active=list(c.active))
                     for c in r.cohorts],
            csv=render.programme_csv(r))


def _d(value: object) -> str | None:
    return None if not isinstance(value, Fraction) else str(decimal(value))


def _s(value: object) -> str | None:
    return None if value is None else str(value)


_COMMON = e.InvalidInputError | e.ForbiddenError | e.RateLimitedError
CampaignEffectivenessResult = Annotated[
    CampaignEffectiveness | e.NotFoundError | _COMMON,
    strawberry.union("CampaignEffectivenessResult")]
CampaignEffectivenessListResult = Annotated[
    CampaignEffectivenessList | _COMMON, strawberry.union("CampaignEffectivenessListResult")]
ProgrammeReportResult = Annotated[
    ProgrammeReport | _COMMON, strawberry.union("ProgrammeReportResult")]
_ONE_ERRORS = errors_of(CampaignEffectivenessResult)
_LIST_ERRORS = errors_of(CampaignEffectivenessListResult)
_PROGRAMME_ERRORS = errors_of(ProgrammeReportResult)


@strawberry.enum(description="What a programme item is: its effectiveness reads the same.")
class ProgrammeItemKind(enum.Enum):
    CAMPAIGN = "campaign"
    CHALLENGE = "challenge"
    DRAW = "draw"


def _one(s: Services, partner_id: str | None, campaign_id: str,
         kind: ProgrammeItemKind) -> fx.Effectiveness:
    return service.item_effectiveness(s.engine, s.rules, s.settings.settlement_currency,
                                      s.clock.now(), partner_id, campaign_id, kind.value,
                                      field="campaignId")


def _all(s: Services, partner_id: str | None,
         kind: ProgrammeItemKind) -> list[fx.Effectiveness]:
    return service.all_effectiveness(s.engine, s.rules, s.settings.settlement_currency,
                                     s.clock.now(), partner_id, kind.value)


def _programme(s: Services, partner_id: str | None, period: Period) -> pr.ProgrammeReport:
    return service.programme_report(s.engine, period, partner_id)


@strawberry.type
class ReportQueries:
    @strawberry.field(description="One campaign's effectiveness: reach, points, cost, "
                      "redemptions and the uplift against its holdout group with a 95 % "
                      "interval (docs/reports.md). Scope: reports:read; a partner sees its "
                      "own campaigns.")
    async def campaign_effectiveness(
        self, info: Info[Context, None], campaign_id: strawberry.ID,
        kind: Annotated[ProgrammeItemKind, strawberry.argument(
            description="A campaign (default), a challenge or a prize draw: campaignId is its "
                        "id. Challenges and draws have no holdout group.")
        ] = ProgrammeItemKind.CAMPAIGN,
    ) -> CampaignEffectivenessResult:
        c = info.context

        async def run() -> CampaignEffectiveness:
            found = await c.run(_one, c.services, c.principal.partner_id, str(campaign_id),
                                kind)
            return CampaignEffectiveness.of(found)

        result: CampaignEffectivenessResult = await answer(c, _ONE_ERRORS, Scope.REPORTS_READ,
                                                           run)
        return result

    @strawberry.field(description="Every campaign's effectiveness you may read (a partner: its "
                      "own, at most 100, by id), with the CSV. Scope: reports:read.")
    async def campaigns_effectiveness(
        self, info: Info[Context, None],
        kind: Annotated[ProgrammeItemKind, strawberry.argument(
            description="Campaigns (default), challenges or prize draws.")
        ] = ProgrammeItemKind.CAMPAIGN,
    ) -> CampaignEffectivenessListResult:
        c = info.context

        async def run() -> CampaignEffectivenessList:
            found = await c.run(_all, c.services, c.principal.partner_id, kind)
            return CampaignEffectivenessList(
                campaigns=[CampaignEffectiveness.of(x) for x in found],
                csv=render.effectiveness_csv(found))

        result: CampaignEffectivenessListResult = await answer(c, _LIST_ERRORS,
                                                               Scope.REPORTS_READ, run)
        return result

    @strawberry.field(description="The programme report for [start, end) (UTC): active and "
                      "cross-brand members, earn/burn, breakage, outstanding points by partner, "
                      "cohort retention. Scope: settlement:read, coalition-wide clients only.")
    async def programme_report(self, info: Info[Context, None], start: datetime,
                               end: datetime) -> ProgrammeReportResult:
        c = info.context

        async def run() -> ProgrammeReport:
            found = await c.run(_programme, c.services, c.principal.partner_id,
                                Period(start, end))
            return ProgrammeReport.of(found)

        result: ProgrammeReportResult = await answer(c, _PROGRAMME_ERRORS,
                                                     Scope.SETTLEMENT_READ, run)
        return result


# --- pages ----------------------------------------------------------------------------------------
Page = Callable[[Request, Principal], Awaitable[Response]]


def _page(path: str, scope: Scope, auth: AuthService, limiter: RateLimiter, render_page: Page,
          on_rate_limited: Callable[[str], None] | None) -> Route:
    async def page(request: Request) -> Response:
        try:
            principal = await auth.authenticate(request)
        except InvalidToken as error:
            return auth.unauthorized_response(error)
        request.scope.setdefault("state", {})["principal"] = principal
        refused = rate_limited(limiter, principal.client_id, on_rate_limited)
        if refused is not None:
            return refused
        try:
            if not principal.has(scope):
                raise Forbidden(scope)
            return await render_page(request, principal)
        except DomainError as exc:
            status = 403 if isinstance(exc, Forbidden) else 404 if exc.code == "NOT_FOUND" \
                else 400
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=status)

    return Route(path, page, methods=["GET"])


def report_pages(services: Services, auth: AuthService, limiter: RateLimiter,
                 on_rate_limited: Callable[[str], None] | None = None) -> list[Route]:
    """The two report pages (HTML with charts, or ``format=csv``)."""
    from anyio import to_thread

    async def programme_page(request: Request, principal: Principal) -> Response:
        period = Period(_time(request, "start"), _time(request, "end"))
        found = await to_thread.run_sync(_programme, services, principal.partner_id, period)
        if request.query_params.get("format") == "csv":
            return _csv(render.programme_csv(found), f"programme-{period.id}.csv")
        import plotly
        return HTMLResponse(render.programme_html(found,
                                                  plotly_src=plotly_path(plotly.__version__)))

    async def campaigns_page(request: Request, principal: Principal) -> Response:
        wanted = request.query_params.get("campaignId")
        try:
            kind = ProgrammeItemKind(request.query_params.get("kind", "campaign"))
        except ValueError:
            raise InvalidInput("kind must be campaign, challenge or draw", field="kind") from None
        if wanted:
            found = [await to_thread.run_sync(_one, services, principal.partner_id, wanted,
                                              kind)]
        else:
            found = await to_thread.run_sync(_all, services, principal.partner_id, kind)
        if request.query_params.get("format") == "csv":
            return _csv(render.effectiveness_csv(found), "campaign-effectiveness.csv")
        import plotly
        return HTMLResponse(render.effectiveness_html(
            found, plotly_src=plotly_path(plotly.__version__)))

    return [_page("/reports/programme", Scope.SETTLEMENT_READ, auth, limiter, programme_page,
                  on_rate_limited),
            _page("/reports/campaigns", Scope.REPORTS_READ, auth, limiter, campaigns_page,
                  on_rate_limited)]


def _csv(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _time(request: Request, name: str) -> datetime:
    text = request.query_params.get(name, "")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time with offset", field=name) from None


__all__ = ["ReportQueries", "report_pages"]
