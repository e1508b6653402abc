"""Settlement over GraphQL (report, close, reconcile) and the HTML report page.

Scopes: ``settlement:read`` to read a report or reconcile, ``settlement:close`` to close. A
finance client bound to a partner sees only its own statement (its line and the matrix cells
it is part of; no coalition line, no hash); a coalition-wide finance client sees everything and
alone may close. Amounts and points in settlement are ``BigInt``: an integer serialised as a
decimal string, since a period's totals can exceed GraphQL's 32-bit ``Int``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import strawberry
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.bigint import BIG_INT_SCALAR, BigInt
from gateway.api.context import Context, Services
from gateway.api.reconciliation import (
    ReconcileStatementInput,
    ReconcileStatementSuccess,
    SettlementStatement,
    reconciled,
)
from gateway.api.results import answer, errors_of
from gateway.api.view import rate_limited
from gateway.auth.scopes import Scope
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken
from gateway.core.errors import DomainError, Forbidden, InvalidInput, NotFound
from gateway.core.ids import PartnerId
from gateway.core.principal import Principal
from gateway.limits import RateLimiter
from gateway.settlement import exposure, service
from gateway.settlement import model as sm
from gateway.settlement.html import report_html
from gateway.settlement.reconcile import reconcile, statement_csv
from gateway.settlement.render import names


@strawberry.type(description="A partner's flows, in the period or in one adjustment.")
class SettlementFigures:
    issued_points: BigInt
    issued_minor: BigInt = strawberry.field(description="Payable by the partner (CEIL).")
    issue_returns_points: BigInt
    issue_returns_minor: BigInt = strawberry.field(description="Credited back (FLOOR).")
    redeemed_points: BigInt
    redeemed_minor: BigInt = strawberry.field(description="Receivable by the partner (FLOOR).")
    redeem_refunds_points: BigInt
    redeem_refunds_minor: BigInt = strawberry.field(description="Charged back (CEIL).")
    donations_points: BigInt
    donations_minor: BigInt
    fee_minor: BigInt
    promotion_points: BigInt = strawberry.field(
        description="Bonus points the partner's own campaigns funded.")
    promotion_minor: BigInt = strawberry.field(
        description="Payable by the partner for them, at each earn's price (CEIL).")
    promotion_returns_points: BigInt
    promotion_returns_minor: BigInt = strawberry.field(description="Credited back (FLOOR).")
    net_minor: BigInt = strawberry.field(description="> 0: the coalition pays the partner.")

    @classmethod
    def of(cls, f: sm.Figures) -> SettlementFigures:
        return cls(**{name: getattr(f, name) for name in cls.__annotations__})


@strawberry.type(description="Operations recorded now that occurred in a period closed before.")
class SettlementAdjustment:
    period_id: str
    period_start: datetime
    period_end: datetime
    figures: SettlementFigures


@strawberry.type
class PartnerSettlementLine:
    partner_id: strawberry.ID
    name: str
    kind: str
    figures: SettlementFigures
    adjustments: list[SettlementAdjustment]
    adjustments_minor: BigInt
    net_minor: BigInt


@strawberry.type(description="The coalition's own line; margin is derived (see docs).")
class CoalitionSettlementLine:
    issue_income_minor: BigInt
    redemption_cost_minor: BigInt
    fees_minor: BigInt
    net_minor: BigInt
    breakage_points: BigInt
    breakage_minor: BigInt
    bonus_points: BigInt
    liability_change_points: BigInt
    liability_change_minor: BigInt
    margin_minor: BigInt
    promotion_income_minor: BigInt = strawberry.field(
        description="Partner funders pay for their campaigns' bonus points, net of reversals.")
    bonus_returns_points: BigInt
    bonus_minor: BigInt = strawberry.field(
        description="The coalition's own campaigns: cost of their bonus points (CEIL).")
    bonus_returns_minor: BigInt


@strawberry.type(description="Bonus points one funder's campaigns issued in the period, and "
                 "their cost at each earn's price. A partner funder pays netMinor to the "
                 "coalition; the coalition's own campaigns are its own cost.")
class PromotionFunderLine:
    funder: strawberry.ID = strawberry.field(description="A partner id, or \"coalition\".")
    points: BigInt
    returned_points: BigInt
    net_points: BigInt
    minor: BigInt
    returned_minor: BigInt
    net_minor: BigInt
    paid_by_funder: bool


@strawberry.type
class SettlementMatrixCell:
    origin: strawberry.ID
    redeemer: strawberry.ID
    origin_name: str = strawberry.field(description="The origin's display name.")
    redeemer_name: str = strawberry.field(description="The redeemer's display name.")
    points: BigInt
    minor: BigInt


@strawberry.type
class SettlementReport:
    period_start: datetime
    period_end: datetime
    currency: str
    sha256: str | None = strawberry.field(description="Coalition-wide view only.")
    partners: list[PartnerSettlementLine]
    coalition: CoalitionSettlementLine | None
    matrix: list[SettlementMatrixCell]
    promotions: list[PromotionFunderLine] = strawberry.field(
        description="Promotion lines per funder (a partner-bound view: its own only).")


@strawberry.type(description="A funder's funding account (docs/funding.md): points throughout; "
                 "headroom leftPoints = limitPoints + fundedPoints - netIssuedPoints; "
                 "exposurePoints = max(0, netIssuedPoints - fundedPoints). Money values them at "
                 "the funder's issue price now (null for the coalition, which has none).")
class FunderExposure:
    funder: strawberry.ID = strawberry.field(description="A partner id, or \"coalition\".")
    mode: str = strawberry.field(description="prepaid or credit.")
    policy: str = strawberry.field(description="refuse or alert, past the headroom.")
    limit_points: BigInt
    funded_points: BigInt = strawberry.field(description="Top-ups or repayments received.")
    issued_points: BigInt
    reversed_points: BigInt
    net_issued_points: BigInt
    exposure_points: BigInt
    left_points: BigInt
    alerts: BigInt
    net_issued_minor: BigInt | None = strawberry.field(description="CEIL at the price now.")
    exposure_minor: BigInt | None = strawberry.field(description="CEIL at the price now.")
    left_minor: BigInt | None = strawberry.field(description="FLOOR at the price now.")
    updated_at: datetime


@strawberry.type
class FunderExposureList:
    currency: str
    funders: list[FunderExposure]


@strawberry.input
class CloseSettlementPeriodInput:
    start: datetime
    end: datetime


@strawberry.type
class CloseSettlementPeriodSuccess:
    period_id: str
    start: datetime
    end: datetime
    closed_at: datetime
    sha256: str


_COMMON_UNION = e.InvalidInputError | e.ForbiddenError | e.RateLimitedError
SettlementReportResult = Annotated[
    SettlementReport | e.SettlementUnbalancedError | _COMMON_UNION,
    strawberry.union("SettlementReportResult")]
CloseSettlementPeriodResult = Annotated[
    CloseSettlementPeriodSuccess | e.PeriodClosedError | e.SettlementUnbalancedError
    | _COMMON_UNION,
    strawberry.union("CloseSettlementPeriodResult")]
FunderExposureResult = Annotated[
    FunderExposureList | _COMMON_UNION, strawberry.union("FunderExposureResult")]
SettlementStatementResult = Annotated[
    SettlementStatement | e.NotFoundError | _COMMON_UNION,
    strawberry.union("SettlementStatementResult")]
ReconcileStatementResult = Annotated[
    ReconcileStatementSuccess | e.StatementMalformedError | e.NotFoundError | _COMMON_UNION,
    strawberry.union("ReconcileStatementResult")]


def _view(report: sm.Report, partner_id: str | None) -> SettlementReport:
    name = names(report)
    lines = [p for p in report.partners if partner_id in (None, p.partner_id)]
    c = report.coalition
    return SettlementReport(
        period_start=report.period.start, period_end=report.period.end,
        currency=report.currency, sha256=report.sha256 if partner_id is None else None,
        partners=[PartnerSettlementLine(
            partner_id=strawberry.ID(p.partner_id), name=p.name, kind=p.kind,
            figures=SettlementFigures.of(p.figures),
            adjustments=[SettlementAdjustment(period_id=a.period_id, period_start=a.period_start,
                                              period_end=a.period_end,
                                              figures=SettlementFigures.of(a.figures))
                         for a in p.adjustments],
            adjustments_minor=p.adjustments_minor, net_minor=p.net_minor) for p in lines],
        coalition=None if partner_id is not None else CoalitionSettlementLine(
            **{name: getattr(c, name) for name in CoalitionSettlementLine.__annotations__}),
        matrix=[SettlementMatrixCell(origin=strawberry.ID(m.origin),
                                     redeemer=strawberry.ID(m.redeemer),
                                     origin_name=name(m.origin), redeemer_name=name(m.redeemer),
                                     points=m.points, minor=m.minor)
                for m in report.matrix if partner_id in (None, m.origin, m.redeemer)],
        promotions=[PromotionFunderLine(
            funder=strawberry.ID(f.funder), points=f.points, returned_points=f.returned_points,
            net_points=f.net_points, minor=f.minor, returned_minor=f.returned_minor,
            net_minor=f.net_minor, paid_by_funder=f.pays)
            for f in report.funders() if partner_id in (None, f.funder)])


def _report(services: Services, period: sm.Period) -> sm.Report:
    return service.settlement_report(services.engine, services.rules, period,
                                     services.settings.settlement_currency)


_REPORT_ERRORS = errors_of(SettlementReportResult)
_STATEMENT_ERRORS = errors_of(SettlementStatementResult)
_EXPOSURE_ERRORS = errors_of(FunderExposureResult)
_CLOSE_ERRORS = errors_of(CloseSettlementPeriodResult)
_RECONCILE_ERRORS = errors_of(ReconcileStatementResult)


@strawberry.type
class SettlementQueries:
    @strawberry.field(description="The settlement report for [start, end) (UTC, half-open). "
                      "Scope: settlement:read; a partner-bound client sees its own statement.")
    async def settlement_report(self, info: Info[Context, None], start: datetime,
                                end: datetime) -> SettlementReportResult:
        c = info.context

        async def run() -> SettlementReport:
            report = await c.run(_report, c.services, sm.Period(start, end))
            return _view(report, c.principal.partner_id)

        result: SettlementReportResult = await answer(c, _REPORT_ERRORS, Scope.SETTLEMENT_READ,
                                                      run)
        return result

    @strawberry.field(description="Your own ledger lines recorded in [start, end) as a CSV "
                      "statement, in the format reconcileStatement reads. Scope: "
                      "settlement:read; coalition-wide clients name the partner.")
    async def settlement_statement(self, info: Info[Context, None], start: datetime,
                                   end: datetime, partner_id: strawberry.ID | None = None
                                   ) -> SettlementStatementResult:
        c = info.context

        async def run() -> SettlementStatement:
            period = sm.Period(start, end)
            partner = _partner_for(c.principal, partner_id)
            text, count = await c.run(statement_csv, c.services.engine, partner, period)
            return SettlementStatement(partner_id=strawberry.ID(partner),
                                       period_start=period.start, period_end=period.end,
                                       lines=count, csv=text)

        result: SettlementStatementResult = await answer(c, _STATEMENT_ERRORS,
                                                         Scope.SETTLEMENT_READ, run)
        return result

    @strawberry.field(description="Every funder's funding and exposure (issue 12). Scope: "
                      "settlement:read; a partner-bound client sees its own funder row only.")
    async def funder_exposure(self, info: Info[Context, None]) -> FunderExposureResult:
        c = info.context

        async def run() -> FunderExposureList:
            s = c.services
            cur = s.settings.settlement_currency
            rows = await c.run(exposure.funder_exposure, s.engine, s.rules, cur, s.clock.now(),
                               c.principal)
            return FunderExposureList(currency=cur, funders=[_exposure(x) for x in rows])

        result: FunderExposureResult = await answer(c, _EXPOSURE_ERRORS, Scope.SETTLEMENT_READ,
                                                    run)
        return result


@strawberry.type
class SettlementMutations:
    @strawberry.mutation(description="Close a period that has ended: its report is stored with "
                         "a SHA-256 hash and can never change. Scope: settlement:close "
                         "(coalition-wide finance clients only).")
    async def close_settlement_period(
        self, info: Info[Context, None], input: CloseSettlementPeriodInput
    ) -> CloseSettlementPeriodResult:
        c = info.context

        async def run() -> CloseSettlementPeriodSuccess:
            service.check_closer(c.principal)  # before the period is even read
            s = c.services
            closed = await c.run(service.close_period, s.engine, s.rules, s.clock,
                                 sm.Period(input.start, input.end),
                                 s.settings.settlement_currency,
                                 actor=f"client:{c.principal.client_id}",
                                 principal=c.principal)
            return CloseSettlementPeriodSuccess(
                period_id=closed.id, start=closed.period.start, end=closed.period.end,
                closed_at=closed.closed_at, sha256=closed.sha256)

        # The scope is checked inside (service.check_closer): a partner-bound finance client
        # hears the real reason.
        result: CloseSettlementPeriodResult = await answer(c, _CLOSE_ERRORS, None, run)
        return result

    @strawberry.mutation(description="Compare a partner's CSV statement with the ledger. "
                         "Stores nothing. Scope: settlement:read.")
    async def reconcile_statement(
        self, info: Info[Context, None], input: ReconcileStatementInput
    ) -> ReconcileStatementResult:
        c = info.context

        async def run() -> ReconcileStatementSuccess:
            partner_id = _partner_for(c.principal, input.partner_id)
            r = await c.run(reconcile, c.services.engine, partner_id,
                            sm.Period(input.start, input.end), input.csv)
            return reconciled(r)

        result: ReconcileStatementResult = await answer(c, _RECONCILE_ERRORS,
                                                        Scope.SETTLEMENT_READ, run)
        return result


def _exposure(x: exposure.FunderExposure) -> FunderExposure:
    f = x.funding
    return FunderExposure(
        funder=strawberry.ID(f.funder), mode=str(f.mode), policy=str(f.policy),
        limit_points=f.limit_points, funded_points=f.funded_points,
        issued_points=f.issued_points, reversed_points=f.reversed_points,
        net_issued_points=f.net_issued_points, exposure_points=f.exposure_points,
        left_points=f.left_points, alerts=f.alerts, net_issued_minor=x.net_issued_minor,
        exposure_minor=x.exposure_minor, left_minor=x.left_minor, updated_at=f.updated_at)


def _partner_for(principal: Principal, asked: str | None) -> PartnerId:
    own = principal.partner_id
    if own is not None:
        if asked is not None and str(asked) != own:
            raise NotFound(f"no partner {asked!r}", field="partnerId")  # looks like missing
        return own
    if asked is None:
        raise InvalidInput("a coalition-wide client names the partner", field="partnerId")
    return PartnerId(str(asked))


def plotly_route() -> Route:
    """plotly.js as a static file under a versioned path, cacheable for a year: the report page
    links it instead of carrying 4.7 MB in every response. Read once, on first request."""
    import plotly
    from plotly.offline import get_plotlyjs

    body: list[bytes] = []

    async def script(_: Request) -> Response:
        if not body:
            body.append(get_plotlyjs().encode())
        return Response(body[0], media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    return Route(plotly_path(plotly.__version__), script, methods=["GET"])


def plotly_path(version: str) -> str:
    return f"/static/plotly-{version}.min.js"


def settlement_page(services: Services, auth: AuthService, limiter: RateLimiter,
                    on_rate_limited: Callable[[str], None] | None = None) -> Route:
    """``GET /settlement/report?start=…&end=…`` with a bearer token holding settlement:read,
    charged to the client's rate limit like a GraphQL request (``view.rate_limited``)."""
    async def page(request: Request) -> Response:
        try:
            principal = await auth.authenticate(request)
        except InvalidToken as error:
            return auth.unauthorized_response(error)
        request.scope.setdefault("state", {})["principal"] = principal  # the access log's
        refused = rate_limited(limiter, principal.client_id, on_rate_limited)
        if refused is not None:
            return refused
        try:
            if not principal.has(Scope.SETTLEMENT_READ):
                raise Forbidden(Scope.SETTLEMENT_READ)
            period = sm.Period(_time(request, "start"), _time(request, "end"))
            from anyio import to_thread

            report = await to_thread.run_sync(_report, services, period)
        except DomainError as exc:
            status = 403 if isinstance(exc, Forbidden) else 400
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=status)
        import plotly

        return HTMLResponse(report_html(report, principal.partner_id,
                                        plotly_src=plotly_path(plotly.__version__)))

    return Route("/settlement/report", page, methods=["GET"])


def _time(request: Request, name: str) -> datetime:
    text = request.query_params.get(name, "")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time with offset", field=name) from None


__all__ = ["BIG_INT_SCALAR", "BigInt", "SettlementMutations", "SettlementQueries",
           "settlement_page"]
