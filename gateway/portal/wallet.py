"""The member's own account in the portal: wallet, history across brands, linked brands (with
unlink) and consents (give or withdraw).

Each page is one handler and one template; the reads and changes are
``gateway.members.viewer``'s, run in a worker thread. A consent given or withdrawn here is
recorded with ``via="portal"``; an unlink closes the link and leaves the points where they are.
A form naming something that does not exist comes back as the page with the error (400)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.core.errors import DomainError
from gateway.ledger import balances
from gateway.ledger import history as ledger_history
from gateway.members import viewer
from gateway.portal.web import PREFIX, Page, Portal, redirect
from gateway.promotions import tiers
from gateway.promotions.tier_config import load_programme, tiers_path

HISTORY_PAGE = 20


def register(portal: Portal) -> None:
    engine, clock = portal.engine, portal.clock
    # The tier programme, read once like the partner catalog (None: no tiers to show).
    programme = load_programme(tiers_path(portal.settings.catalog_dir))

    @portal.page("/wallet", "wallet.html")
    async def wallet(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        found = await page.run(balances.wallet, engine, clock, page.member_id)
        tier = await page.run(tiers.member_status, engine, programme, page.member_id,
                              clock.now())
        return page.render({"wallet": found, "days": balances.EXPIRING_DAYS, "tier": tier})

    @portal.page("/history", "history.html")
    async def history(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        after = request.query_params.get("after") or None
        try:
            found = await page.run(ledger_history.history, engine, page.member_id,
                                   HISTORY_PAGE, after)
        except DomainError:  # a cursor that is not ours: start from the newest
            found = await page.run(ledger_history.history, engine, page.member_id,
                                   HISTORY_PAGE, None)
        return page.render({"history": found, "request_after": after})

    @portal.page("/brands", "brands.html", methods=("GET", "POST"))
    async def brands(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        error: DomainError | None = None
        if request.method == "POST":
            try:
                await page.run(viewer.unlink_brand, engine, clock, page.member_id,
                               page.form.get("partner_id", ""))
            except DomainError as failed:
                error = failed
            else:
                return redirect(f"{PREFIX}/brands?unlinked=1")
        found = await page.run(viewer.linked_brands, engine, page.member_id)
        context = {"brands": found, "unlinked": request.query_params.get("unlinked") == "1"}
        if error is not None:
            return page.render({**context, "error": error.message}, status=400)
        return page.render(context)

    @portal.page("/consents", "consents.html", methods=("GET", "POST"))
    async def consents(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        error: DomainError | None = None
        if request.method == "POST":
            form = page.form
            try:
                await page.run(viewer.set_consent, engine, clock, page.member_id,
                               form.get("purpose", ""), form.get("partner_id") or None,
                               form.get("granted") == "1", "portal")
            except DomainError as failed:
                error = failed
            else:
                return redirect(f"{PREFIX}/consents?saved=1")
        rows = await page.run(_consent_rows, portal, page.member_id)
        context = {"rows": rows, "saved": request.query_params.get("saved") == "1"}
        if error is not None:
            return page.render({**context, "error": error.message}, status=400)
        return page.render(context)


def _consent_rows(portal: Portal, member_id: str) -> list[dict[str, object]]:
    """One row per choice the member can make: coalition-wide use of purchase history and the
    coalition's own marketing, then marketing for every linked brand and every partner with a
    recorded choice."""
    states = viewer.consent_states(portal.engine, member_id)
    brands = viewer.linked_brands(portal.engine, member_id)
    latest = {(s.purpose, s.partner_id): s for s in states}
    rows: list[dict[str, object]] = [{
        "purpose": "purchase_history", "partner_id": "", "label":
        "Use my purchase history for personal offers (all brands)",
        "state": latest.get(("purchase_history", None))}, {
        "purpose": "coalition_marketing", "partner_id": "", "label":
        "Offers and birthday greetings from the coalition (notifications and email)",
        "state": latest.get(("coalition_marketing", None))}]
    partners = {b.partner_id: b.partner_name for b in brands}
    partners.update({s.partner_id: s.partner_name or s.partner_id for s in states
                     if s.purpose == "marketing" and s.partner_id is not None})
    for partner_id, name in sorted(partners.items(), key=lambda p: (p[1], p[0])):
        rows.append({"purpose": "marketing", "partner_id": partner_id,
                     "label": f"Marketing from {name}",
                     "state": latest.get(("marketing", partner_id))})
    return rows
