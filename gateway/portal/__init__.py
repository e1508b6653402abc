"""The member portal: server-rendered pages (Starlette + Jinja2, no front-end build chain)
where members sign up, sign in, claim a till card, see their card and balance, and approve the
apps and partners that ask for access (``/oauth/authorize``); then their wallet, history, brands
and consents (``wallet``), link and store codes (``codes``), donate, merge, export and
delete (``account``), and notifications (``notifications``). ``portal_routes`` is mounted by
the composition root; every page is one route and one template (``gateway.portal.web``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from gateway.auth.service import AuthService
from gateway.core.clock import Clock
from gateway.ledger.context import LedgerContext
from gateway.members.credentials import SignInLimits
from gateway.portal import (
    account,
    authorize,
    challenges,
    codes,
    draws,
    notifications,
    pages,
    wallet,
)
from gateway.portal.web import PREFIX, Portal
from gateway.settings import Settings

_CSS = Path(__file__).resolve().parent / "static" / "portal.css"


def portal_routes(*, engine: Engine, clock: Clock, settings: Settings, auth: AuthService,
                  limits: SignInLimits, ledger: LedgerContext) -> list[Route]:
    portal = Portal(engine=engine, clock=clock, settings=settings)
    pages.register(portal, limits, auth.feed)
    authorize.register(portal, auth)
    wallet.register(portal)
    codes.register(portal)
    account.register(portal, ledger, limits)
    notifications.register(portal)
    draws.register(portal, ledger)
    challenges.register(portal)

    async def stylesheet(_: Request) -> Response:
        return FileResponse(_CSS, media_type="text/css",
                            headers={"Cache-Control": "public, max-age=3600",
                                     "X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "default-src 'none'; "
                                                                "frame-ancestors 'none'"})

    return [*portal.routes, Route(f"{PREFIX}/static/portal.css", stylesheet)]
