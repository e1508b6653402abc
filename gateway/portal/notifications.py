"""The member's notifications in the portal: the feed (newest first, 20 a page), "mark all
read", and notification emails on or off. The reads and changes are
``gateway.notifications.store``'s, for the signed-in member only, run in a worker thread."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.core.errors import DomainError
from gateway.notifications import store
from gateway.portal.web import PREFIX, Page, Portal, redirect

FEED_PAGE = 20


def register(portal: Portal) -> None:
    engine, clock = portal.engine, portal.clock

    @portal.page("/notifications", "notifications.html", methods=("GET", "POST"))
    async def notifications(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        if request.method == "POST":
            action = page.form.get("action")
            if action == "read-all":
                await page.run(store.mark_read, engine, clock, page.member_id, None)
            elif action in ("email-on", "email-off"):
                await page.run(store.set_email, engine, clock, page.member_id,
                               action == "email-on")
            return redirect(f"{PREFIX}/notifications?saved=1")
        after = request.query_params.get("after") or None
        try:
            found = await page.run(store.feed, engine, page.member_id, FEED_PAGE, after)
        except DomainError:  # a cursor that is not ours: start from the newest
            found = await page.run(store.feed, engine, page.member_id, FEED_PAGE, None)
        prefs = await page.run(store.preferences, engine, page.member_id)
        return page.render({"feed": found, "preferences": prefs, "request_after": after,
                            "saved": request.query_params.get("saved") == "1"})
