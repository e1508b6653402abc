"""The composition root: the only place the gateway's parts are built and wired together."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.context import Services
from gateway.api.draws import proof_route
from gateway.api.reports import report_pages
from gateway.api.schema import build_schema
from gateway.api.settlement import plotly_route, settlement_page
from gateway.api.view import GatewayGraphQL
from gateway.auth.endpoints import auth_routes
from gateway.auth.service import AuthService
from gateway.backends import Backends, build_backends
from gateway.challenges.service import catalog_path, check_catalog
from gateway.core.clock import Clock, SystemClock
from gateway.db import migrate
from gateway.db.batch import observe_batches, stop_writer, writer_for
from gateway.db.engine import make_engine
from gateway.ledger.context import LedgerContext
from gateway.limits import RateLimiter
from gateway.members.credentials import sign_in_limits
from gateway.observability.logs import configure_logging
from gateway.observability.metrics import Metrics, metrics_endpoint
from gateway.observability.middleware import ObservabilityMiddleware, RouteNames
from gateway.portal import portal_routes
from gateway.promotions.tier_config import load_programme, tiers_path
from gateway.rules.campaigns import CampaignBook
from gateway.rules.store import RuleBook, sync_catalog
from gateway.settings import Settings
from gateway.web.headers import SecurityHeaders
from partners.registry import Registry

# How long /readyz waits for one dependency before calling it down: a load balancer's probe
# times out too, and a hung check must not hold a worker thread for long.
READY_TIMEOUT_S = 3.0

GIL_SWITCH_INTERVAL_S = 0.0005  # under a server; CPython's default is 0.005


@dataclass
class Gateway:
    """The built application and the parts tests and the CLI reach for."""

    app: Starlette
    services: Services
    auth: AuthService
    backends: Backends
    metrics: Metrics


def prepare(settings: Settings, *, clock: Clock | None = None,
            engine: Engine | None = None, catalog: Registry | None = None) -> Engine:
    """What must happen once per deploy before any worker serves: migrate the schema to the
    newest revision and store catalog partners and rule versions not yet stored."""
    if engine is None:
        ensure_sqlite_dir(settings.database_url)
        engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    catalog = catalog or Registry.from_catalog(settings.catalog_dir)
    sync_catalog(engine, catalog, clock or SystemClock())
    return engine


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    limiter: RateLimiter | None = None,
    prepared: bool = False,
) -> Gateway:
    """The whole application. ``prepared``: the schema and catalog are already up to date
    (``gateway serve`` ran ``prepare`` once in the parent), so a worker skips both."""
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    if engine is None:
        ensure_sqlite_dir(settings.database_url)
        engine = make_engine(settings.database_url)
    catalog = Registry.from_catalog(settings.catalog_dir)
    # The coalition's challenges file is read strictly at start, like a partner file: an invalid
    # one stops start-up naming the field (``gateway challenges sync`` stores it; decision 032).
    check_catalog(catalog_path(settings.catalog_dir),
                  frozenset(p.id for p in catalog.partners()))
    if not prepared:
        prepare(settings, clock=clock, engine=engine, catalog=catalog)
    rules = RuleBook(engine, catalog)
    campaigns = CampaignBook(engine)
    backends = build_backends(settings, engine, clock)
    if limiter is not None:
        backends.limiter = limiter
    metrics = Metrics()
    observe_batches(engine, metrics.record_commit_batch)  # SQLite's group commits, if any
    sign_in = sign_in_limits(backends.make_limiter)
    services = Services(
        settings=settings, engine=engine, clock=clock, rules=rules,
        ledger=LedgerContext(engine=engine, rules=rules, clock=clock, locks=backends.locks,
                             on_commit=metrics.record_operation, guesses=backends.guesses,
                             campaigns=campaigns,
                             tiers=load_programme(tiers_path(settings.catalog_dir))),
        sign_in=sign_in,
    )
    auth = AuthService(engine, settings, clock, revocations=backends.revocations,
                       make_limiter=backends.make_limiter)
    graphql = GatewayGraphQL(build_schema(settings), services, auth, backends.limiter,
                             on_rate_limited=metrics.record_rate_limited)

    async def healthz(_: Request) -> Response:
        """Liveness: the process answers. No dependency is consulted (a database outage must
        not make an orchestrator restart every gateway)."""
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Readiness: the database answers ``SELECT 1`` and every backend check passes.
        ``?only=database`` (a comma list) runs only those: a load balancer routing on readiness
        should not drop every host at once because the one shared Redis is down while limits
        fail open (docs/deployment.md)."""
        checks: dict[str, Callable[[], None]] = {"database": lambda: _select_one(engine),
                                                 **backends.checks}
        only = request.query_params.get("only")
        if only is not None:
            wanted = set(only.split(","))
            unknown = sorted(wanted - checks.keys())
            if unknown:
                return JSONResponse({"status": "unknown check", "unknown": unknown,
                                     "known": sorted(checks)}, 400)
            checks = {name: check for name, check in checks.items() if name in wanted}
        results = await asyncio.gather(*(_probe(check) for check in checks.values()))
        report = dict(zip(checks, results, strict=True))
        down = {name: result for name, result in report.items() if result != "ok"}
        status = 503 if down else 200
        return JSONResponse({"status": "unavailable" if down else "ready",
                             "down": sorted(down), "checks": report}, status)

    routes = [
        *auth_routes(auth),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint(metrics, settings.metrics_token)),
        settlement_page(services, auth, backends.limiter, metrics.record_rate_limited),
        plotly_route(),
        proof_route(services, backends.limiter, metrics.record_rate_limited),
        *report_pages(services, auth, backends.limiter, metrics.record_rate_limited),
        *portal_routes(engine=engine, clock=clock, settings=settings, auth=auth,
                       limits=sign_in, ledger=services.ledger),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        """Under a server (not in-process tests): sample this worker's process gauges; on
        shutdown close the backends and the pool, and mark the worker dead for /metrics."""
        # The group-commit writer thread (SQLite) answers a whole batch when its COMMIT returns,
        # and must get the GIL back from the event loop to do so: with CPython's default 5 ms
        # switch interval a busy loop keeps every answer of the batch waiting up to 5 ms. 0.5 ms
        # halved earn's p99/p50 at 70 % of peak in an A/B (docs/benchmarks.md, "The floor").
        # PostgreSQL has no writer thread: the default stays.
        if writer_for(engine) is not None:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        sampler = asyncio.create_task(metrics.sample_forever())
        refusals = asyncio.create_task(_flush_refusals_forever(auth))
        try:
            yield
        finally:
            sampler.cancel()
            refusals.cancel()
            with contextlib.suppress(Exception):  # a database gone at shutdown loses counts only
                await run_in_threadpool(auth.flush_audit)
            # Drain the group-commit writer (SQLite): queued commands commit and answer first.
            await run_in_threadpool(stop_writer, engine)
            metrics.worker_exited()
            backends.close()
            engine.dispose()

    middleware = [Middleware(ObservabilityMiddleware, metrics=metrics,
                             routes=RouteNames(routes)),
                  Middleware(SecurityHeaders)]  # nosniff everywhere, CSP on HTML pages
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    return Gateway(app=app, services=services, auth=auth, backends=backends, metrics=metrics)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI factory each ``gateway serve`` worker calls
    (``uvicorn --factory gateway.app:create_app``). Settings come from the environment, and the
    schema is expected at the newest revision: ``gateway serve`` (or ``gateway db upgrade``)
    migrates once before workers start, so N workers never race to migrate."""
    settings = settings or Settings.from_env()
    configure_logging(json_lines=settings.log_json)
    return build(settings, prepared=True).app


async def _flush_refusals_forever(auth: AuthService, every_s: float = 30.0) -> None:
    """Refused-authentication counts reach ``audit_log`` soon after their minute ends even
    when no later refusal comes to write them."""
    while True:
        await asyncio.sleep(every_s)
        await run_in_threadpool(auth.server.refusals.flush, everything=False)


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _probe(check: Callable[[], None]) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(check), READY_TIMEOUT_S)
    except TimeoutError:
        return f"timeout after {READY_TIMEOUT_S} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


def ensure_sqlite_dir(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        Path(url[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)
