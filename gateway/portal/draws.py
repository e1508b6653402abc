"""The member's prize draws in the portal (decision 033): the draws open now and those they
entered, their entries and pseudonymous entrant id, the commitment, and once closed the seed,
the winners and what they won; a form buys entries with points.

The form carries a random nonce that becomes the ledger's idempotency key (like donate), so a
double submit or a reload of the POST buys once. A refusal comes back as the page with its
message (400) and changes nothing."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from gateway.core.errors import DomainError, InvalidInput
from gateway.draws import entries, service
from gateway.ledger import balances
from gateway.ledger.context import LedgerContext
from gateway.portal.web import Page, Portal


def register(portal: Portal, ledger: LedgerContext) -> None:
    engine, clock = portal.engine, portal.clock

    def view(member_id: str) -> dict[str, object]:
        return {"draws": service.member_draws(engine, member_id, clock.now()),
                "available": balances.wallet(engine, clock, member_id).balance.available,
                "nonce": secrets.token_urlsafe(18)}

    @portal.page("/draws", "draws.html", methods=("GET", "POST"))
    async def draws(request: Request, page: Page) -> Response:
        member_id = page.member_id
        assert member_id is not None
        notice = None
        if request.method == "POST":
            form = page.form
            try:
                done = await page.run(entries.enter_draw, ledger, member_id,
                                      form.get("draw", ""), _count(form.get("entries", "")),
                                      form.get("nonce", ""))
            except DomainError as error:
                context = await page.run(view, member_id)
                return page.render({**context, "error": error.message,
                                    "error_field": error.field}, status=400)
            notice = (f"{done.entries} entries bought for {done.points} points: you hold "
                      f"{done.total_entries}.")
        context = await page.run(view, member_id)
        return page.render({**context, "notice": notice})


def _count(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError as error:
        raise InvalidInput("enter the entries as a whole number", field="entries") from error
