"""The member's challenges and badges in the portal (issue 13, decision 032): progress in every
challenge running now (done of target, until when, the bonus and badge) and the badges kept.
The reads are ``gateway.challenges.service``'s, run in a worker thread."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.challenges import service
from gateway.portal.web import Page, Portal


def register(portal: Portal) -> None:
    engine, clock = portal.engine, portal.clock

    @portal.page("/challenges", "challenges.html")
    async def challenges(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        running = await page.run(service.member_challenges, engine, page.member_id,
                                 clock.now())
        badges = await page.run(service.member_badges, engine, page.member_id)
        return page.render({"challenges": running, "badges": badges})
