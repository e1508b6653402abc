"""The member's heavier actions in the portal: donate points to a charity, merge a second
account they hold, export their data, and delete their account.

- Donate: the form carries a random nonce that becomes the ledger's idempotency key, so a
  double submit (or a reload of the POST) donates once.
- Merge: the member proves they hold the other account with its card number and activation
  code or with its email and password, through the same check as the API
  (``merge_proof.prove_second_account``: one answer for any wrong proof, the same budgets);
  then ``merge_members`` under the form's nonce.
- Export: a POST (CSRF-checked) answers the JSON of ``gateway.members.export`` as a download.
- Delete: choose forfeit or donate, confirm on a second step, then ``erase_member``; the session
  ends and the member is signed out.

Domain calls run in a worker thread; a domain error comes back as the form with its message."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from gateway.core.errors import DomainError, InvalidInput, RateLimited
from gateway.ledger import balances, erasure, member_ops
from gateway.ledger.context import LedgerContext
from gateway.members import viewer
from gateway.members.credentials import SignInLimits
from gateway.members.export import export_member
from gateway.members.merge_proof import prove_second_account
from gateway.members.sessions import end_session
from gateway.portal.web import Page, Portal, client_address


def register(portal: Portal, ledger: LedgerContext, limits: SignInLimits) -> None:
    engine, clock = portal.engine, portal.clock

    @portal.page("/donate", "donate.html", methods=("GET", "POST"))
    async def donate(request: Request, page: Page) -> Response:
        member_id = page.member_id
        assert member_id is not None
        context: dict[str, object] = {"charities": await page.run(viewer.charities, engine)}
        if request.method == "POST":
            form = page.form
            try:
                done = await page.run(member_ops.donate_points, ledger, member_id,
                                      form.get("charity", ""), _points(form.get("points", "")),
                                      form.get("nonce", ""))
            except DomainError as error:
                context["available"] = await page.run(_available, portal, member_id)
                return _failed(page, error, context)
            context["notice"] = f"Thank you: {done.points} points donated."
        context["available"] = await page.run(_available, portal, member_id)
        return page.render({**context, "nonce": _nonce()})

    @portal.page("/merge", "merge.html", methods=("GET", "POST"))
    async def merge(request: Request, page: Page) -> Response:
        member_id = page.member_id
        assert member_id is not None
        if request.method == "GET":
            return page.render({"nonce": _nonce()})
        form = page.form
        address = client_address(request)
        try:
            member_ops.check_key(form.get("nonce", ""))
            # The API's proof, with its budgets (per member and address; sign-in's own).
            by_sign_in = form.get("method") == "sign_in"
            absorbed = await page.run(
                prove_second_account, engine, ledger.guesses, limits, member_id,
                source=address,
                card_number=None if by_sign_in else form.get("card_number", ""),
                activation_code=None if by_sign_in else form.get("activation_code", ""),
                email=form.get("email", "") if by_sign_in else None,
                password=form.get("password", "") if by_sign_in else None)
            done = await page.run(member_ops.merge_members, engine, clock, member_id, absorbed,
                                  f"member:{member_id}", idempotency_key=form["nonce"])
        except DomainError as error:
            return _failed(page, error, {"nonce": _nonce()})
        return page.render({"merged": done, "nonce": _nonce(),
                            "notice": f"Merged: {done.wallet} points and "
                                      f"{len(done.links_moved)} brands moved to this account."})

    @portal.page("/export", "export.html", methods=("GET", "POST"))
    async def export(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        if request.method == "GET":
            return page.render()
        body = await page.run(export_member, engine, clock, page.member_id)
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": 'attachment; filename="coalition-my-data.json"'})

    @portal.page("/delete", "delete.html", methods=("GET", "POST"))
    async def delete(request: Request, page: Page) -> Response:
        member_id = page.member_id
        assert member_id is not None
        context: dict[str, object] = {"charities": await page.run(viewer.charities, engine)}
        if request.method == "GET":
            return page.render(context)
        form = page.form
        remaining = form.get("remaining", "")
        charity = (form.get("charity") or None) if remaining == "DONATE" else None
        try:
            if remaining not in erasure.CHOICES:
                raise InvalidInput("choose what happens to your points", field="remaining")
            if remaining == "DONATE" and charity is None:
                raise InvalidInput("choose the charity to donate to", field="charity")
            if form.get("confirm") != "yes":
                names = {c_id: name for c_id, name in await page.run(viewer.charities, engine)}
                return page.render({**context, "confirming": True, "remaining": remaining,
                                    "charity": charity or "",
                                    "charity_name": names.get(charity or "", "")})
            await page.run(erasure.erase_member, ledger, member_id, remaining, charity,
                           f"member:{member_id}")
        except DomainError as error:
            return _failed(page, error, context)
        await page.run(end_session, engine, clock, page.session_token)
        response = page.render({"deleted": True, "signed_in": False})
        portal.set_session(response, None)
        return response


def _available(portal: Portal, member_id: str) -> int:
    return balances.wallet(portal.engine, portal.clock, member_id).balance.available


def _points(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError as error:
        raise InvalidInput("enter the points as a whole number", field="points") from error


def _nonce() -> str:
    return secrets.token_urlsafe(18)


def _failed(page: Page, error: DomainError, context: dict[str, object]) -> Response:
    values = {k: v for k, v in page.form.items()
              if k not in ("password", "activation_code", "nonce")}
    response = page.render({**context, "error": error.message, "error_field": error.field,
                            "values": values, "nonce": _nonce()},
                           status=429 if isinstance(error, RateLimited) else 400)
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response

