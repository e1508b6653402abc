"""The portal's own pages: sign up, sign in, claim a till card, sign out, and home.

Each is one handler on :meth:`Portal.page` and one template. Domain errors come back as the
same form with the message beside the field that caused it (HTTP 400), a rate limit as 429
with ``Retry-After``; nothing here decides a rule (``gateway.members.credentials`` does)."""

from __future__ import annotations

import logging
from datetime import date

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.feed import AuthFeed
from gateway.core.clock import Clock
from gateway.core.errors import DomainError, InvalidInput, RateLimited, UnknownMember
from gateway.ledger import enrolment
from gateway.ledger.balances import member_balance
from gateway.members import credentials, password_reset, viewer
from gateway.members.credentials import SignInLimits
from gateway.members.sessions import end_session, start_session
from gateway.notifications.mail import send_one
from gateway.portal.web import PREFIX, Page, Portal, client_address, redirect, safe_next

LOG = logging.getLogger("gateway.portal")


def register(portal: Portal, limits: SignInLimits, feed: AuthFeed) -> None:
    """``feed``: the auth feed told when a password reset cut off the member's app tokens, so
    this process refuses them at once (other processes within its refresh bound)."""
    engine, clock = portal.engine, portal.clock

    @portal.page("/", "home.html")
    async def home(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        try:
            card, balance = await page.run(_card_and_balance, portal, clock, page.member_id)
        except UnknownMember:  # merged into another account or erased meanwhile
            return redirect(PREFIX + "/sign-in")
        return page.render({"card_number": card, "balance": balance})

    @portal.page("/sign-up", "sign_up.html", methods=("GET", "POST"), signed_in=False)
    async def sign_up(request: Request, page: Page) -> Response:
        if request.method == "GET":
            return page.render()
        form = page.form
        try:
            birth = _date(form.get("birth_date", ""))
            created = await page.run(
                enrolment.sign_up, engine, clock, form.get("email", ""),
                form.get("password", ""), birth_date=birth, language=form.get("language") or None)
        except DomainError as error:
            return _form_error(page, error)
        return await _signed_in(portal, page, created.member_id, PREFIX + "/")

    @portal.page("/sign-in", "sign_in.html", methods=("GET", "POST"), signed_in=False)
    async def sign_in(request: Request, page: Page) -> Response:
        target = safe_next(request.query_params.get("next") or page.form.get("next"))
        if request.method == "GET":
            return page.render({"next": target})
        try:
            member_id = await page.run(credentials.sign_in, engine, limits,
                                       page.form.get("email", ""), page.form.get("password", ""),
                                       address=client_address(request))
        except DomainError as error:
            return _form_error(page, error, {"next": target})
        return await _signed_in(portal, page, member_id, target)

    @portal.page("/forgot", "forgot.html", methods=("GET", "POST"), signed_in=False)
    async def forgot(request: Request, page: Page) -> Response:
        """Ask for a reset link (decision 036). The answer is the same page whether the email
        has an account or not, and the email goes out after the response."""
        if request.method == "GET":
            return page.render()
        try:
            email = password_reset.admit_request(limits, page.form.get("email", ""),
                                                 address=client_address(request))
        except DomainError as error:
            return _form_error(page, error)
        response = page.render({"sent": True})
        # The lookup, the link and the email all happen after the response: the page and its
        # timing are the same whether the email has an account or not.
        response.background = BackgroundTask(_send_reset, portal, email)
        return response

    @portal.page("/reset", "reset.html", methods=("GET", "POST"), signed_in=False)
    async def reset(request: Request, page: Page) -> Response:
        token = (request.query_params.get("token") if request.method == "GET"
                 else page.form.get("token")) or ""
        try:
            if request.method == "GET":
                await page.run(password_reset.check_link, engine, clock, token)
                response = page.render({"token": token})
            else:
                changed = await page.run(
                    password_reset.reset_password, engine, clock, limits, token,
                    page.form.get("password", ""), address=client_address(request))
                feed.changed()  # the reset cut off the member's app tokens (committed)
                response = await _signed_in(portal, page, changed.member_id, PREFIX + "/")
                response.background = BackgroundTask(_tell_changed, portal, changed)
        except DomainError as error:
            response = _form_error(page, error, {"token": token})
        # The link's token is in this page's address: never sent on as a Referer, never kept.
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @portal.page("/claim", "claim.html", methods=("GET", "POST"), signed_in=False)
    async def claim(request: Request, page: Page) -> Response:
        if request.method == "GET":
            return page.render()
        form = page.form
        try:
            member_id = await page.run(
                credentials.claim, engine, clock, limits, form.get("card_number", ""),
                form.get("activation_code", ""), form.get("email", ""), form.get("password", ""),
                address=client_address(request))
        except DomainError as error:
            return _form_error(page, error)
        return await _signed_in(portal, page, member_id, PREFIX + "/")

    @portal.page("/sign-out", "sign_out.html", methods=("GET", "POST"), signed_in=False)
    async def sign_out(request: Request, page: Page) -> Response:
        if request.method == "GET":
            return page.render()
        await page.run(end_session, engine, clock, page.session_token)
        response = redirect(PREFIX + "/sign-in")
        portal.set_session(response, None)
        return response


async def _signed_in(portal: Portal, page: Page, member_id: str, target: str) -> Response:
    token = await page.run(start_session, portal.engine, portal.clock, member_id)
    response = redirect(target)
    portal.set_session(response, token)
    return response


def _send_reset(portal: Portal, email: str) -> None:
    """After the response: make the link, if the email has an account, and email it. A
    failure (the database, the relay) is logged, never shown: the page must not tell whether
    the email has an account, and the member can ask again."""
    minutes = int(password_reset.RESET_TTL.total_seconds() // 60)
    try:
        link = password_reset.create_link(portal.engine, portal.clock, email)
        if link is None:
            return
        url = f"{portal.settings.issuer}{PREFIX}/reset?token={link.token}"
        body = (f"Someone, hopefully you, asked to reset the password of your Coalition "
                f"rewards account.\n\nOpen this link within {minutes} minutes to choose a new "
                f"one:\n\n{url}\n\nIf it was not you, ignore this email: your password stays "
                f"as it is. Choosing a new password signs you out of the portal everywhere "
                f"else.\n")
        send_one(portal.settings.mail, link.email, "Reset your Coalition rewards password",
                 body, "password-reset", portal.clock.now())
    except Exception:
        LOG.exception("a password reset link could not be made or sent")


def _tell_changed(portal: Portal, changed: password_reset.PasswordChanged) -> None:
    """After the response: tell the account's email that its password changed, so a reset
    the member did not make does not go unnoticed. A failure is logged."""
    try:
        send_one(portal.settings.mail, changed.email, "Your Coalition rewards password changed",
                 "The password of your Coalition rewards account was changed just now, with a "
                 "reset link sent to this address, and every other portal session was signed "
                 f"out.\n\nIf it was not you, ask for a new link at "
                 f"{portal.settings.issuer}{PREFIX}/forgot and choose another password.\n",
                 "password-changed", portal.clock.now())
    except Exception:
        LOG.exception("the password-changed email to member %s could not be sent",
                      changed.member_id)


def _form_error(page: Page, error: DomainError, extra: dict[str, object] | None = None
                ) -> Response:
    values = {k: v for k, v in page.form.items() if k not in ("password", "activation_code")}
    context = {"error": error.message, "error_field": error.field, "values": values,
               **(extra or {})}
    if isinstance(error, RateLimited):
        response = page.render(context, status=429)
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response
    return page.render(context, status=400)


def _date(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as error:
        raise InvalidInput("enter the birth date as YYYY-MM-DD", field="birthDate") from error


def _card_and_balance(portal: Portal, clock: Clock, member_id: str) -> tuple[str, object]:
    # UNKNOWN_MEMBER if the account was merged or erased since the session was checked.
    return (viewer.card_number(portal.engine, member_id),
            member_balance(portal.engine, clock, member_id))
