"""``/oauth/authorize``: the member's half of the authorization code flow, in the portal.

GET validates the request (``gateway.auth.authorize``) and shows the consent page: the client's
name, the partner, and what each granted scope lets it do. The member approves or denies by a
POST of the same URI with the CSRF token; the browser is then sent to the client's redirect URI
with a code or ``error=access_denied``. A signed-out member is sent to sign-in and back. Requests
that may not be redirected (unknown client, unregistered redirect URI) get an error page."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import server as oauth
from gateway.auth.authorize import AuthorizationRefused, consent_request, decide
from gateway.auth.service import AuthService
from gateway.portal.web import Page, Portal, redirect


def register(portal: Portal, auth: AuthService) -> None:
    base = auth.settings.issuer.rstrip("/")

    @portal.page(oauth.AUTHORIZATION_PATH, "consent.html", methods=("GET", "POST"), prefix="")
    async def authorize(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        http = oauth.HttpRequest(method="GET", uri=f"{base}{oauth.AUTHORIZATION_PATH}",
                                 headers=dict(request.headers),
                                 form=parse_qsl(request.url.query, keep_blank_values=True))
        try:
            if request.method == "GET":
                consent = await page.run(consent_request, auth.server, http, page.member_id)
                origin = urlsplit(consent.redirect_uri)
                page.form_action = (f"{origin.scheme}://{origin.netloc}",)
                return page.render({"consent": consent, "query": request.url.query})
            approve = page.form.get("decision") == "approve"
            location = await page.run(decide, auth.server, http, page.member_id, approve=approve)
        except AuthorizationRefused as refused:
            if refused.location is not None:
                return redirect(refused.location)
            return page.render({"message": f"This sign-in link is not valid "
                                f"({refused.error}: {refused.description}). Go back to the app "
                                "you came from and try again."},
                               status=400, template="error.html")
        return redirect(location)
