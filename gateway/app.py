"""The composition root: the only place the gateway's parts are built and wired together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.context import Services
from gateway.api.schema import build_schema
from gateway.api.settlement import settlement_page
from gateway.api.view import GatewayGraphQL
from gateway.auth.endpoints import auth_routes
from gateway.auth.service import AuthService
from gateway.backends import Backends, build_backends
from gateway.core.clock import Clock, SystemClock
from gateway.db.engine import create_schema, make_engine
from gateway.ledger.context import LedgerContext
from gateway.limits import RateLimiter
from gateway.rules.store import RuleBook, sync_catalog
from gateway.settings import Settings
from partners.registry import Registry


@dataclass
class Gateway:
    """The built application and the parts tests and the CLI reach for."""

    app: Starlette
    services: Services
    auth: AuthService
    backends: Backends


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    limiter: RateLimiter | None = None,
) -> Gateway:
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    if engine is None:
        _ensure_sqlite_dir(settings.database_url)
        engine = make_engine(settings.database_url)
    create_schema(engine)
    catalog = Registry.from_catalog(settings.catalog_dir)
    sync_catalog(engine, catalog, clock)
    rules = RuleBook(engine, catalog)
    backends = build_backends(settings, engine, clock)
    if limiter is not None:
        backends.limiter = limiter
    services = Services(
        settings=settings, engine=engine, clock=clock, rules=rules,
        ledger=LedgerContext(engine=engine, rules=rules, clock=clock, locks=backends.locks),
    )
    auth = AuthService(engine, settings, clock, revocations=backends.revocations)
    graphql = GatewayGraphQL(build_schema(settings), services, auth, backends.limiter)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, 503)
        return JSONResponse({"status": "ready", "database": "ok"})

    routes = [
        *auth_routes(auth),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        settlement_page(services, auth),
    ]
    return Gateway(app=Starlette(routes=routes), services=services, auth=auth,
                   backends=backends)


def create_app(settings: Settings | None = None) -> Starlette:
    """ASGI factory for uvicorn (``uvicorn --factory gateway.app:create_app``)."""
    return build(settings).app


def _ensure_sqlite_dir(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        Path(url[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)
