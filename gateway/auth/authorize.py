"""The authorization endpoint's protocol half (RFC 6749 §4.1.1-§4.1.2), framework-free.

The portal (``gateway.portal.authorize``) shows the member a consent page and posts their
decision; this module validates the request with authlib's grant and says what to answer:

* :func:`consent_request` → a :class:`ConsentRequest` (the client, what it asks for) to show;
* :func:`decide` → the ``Location`` to send the browser to (the client's redirect URI with a
  code, or with ``error=access_denied``);
* either raises :class:`AuthorizationRefused`. Its ``location`` is set only when the client and
  its redirect URI are valid (§4.1.2.1): an unknown client or an unregistered redirect URI gets
  an error page, never a redirect.

Blocking (database reads and writes): call these from a worker thread."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from sqlalchemy import select

from gateway.auth import scopes as scope_list
from gateway.auth.server import HttpRequest, OAuthServer, _Client
from gateway.db.tables import partners

# Parameters that may appear once only (RFC 6749 §3.1, RFC 7636 §4.3).
_SINGLE = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
           "code_challenge_method", "customer_id")


class AuthorizationRefused(Exception):
    def __init__(self, error: str, description: str, location: str | None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.location = location  # None: show an error page, do not redirect


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    client_id: str
    client_name: str
    kind: str  # partner | app
    partner_id: str | None
    partner_name: str | None
    scopes: tuple[tuple[str, str], ...]  # (name, description), in SCOPES order
    redirect_uri: str
    customer_id: str | None


def consent_request(server: OAuthServer, http: HttpRequest, member_id: str) -> ConsentRequest:
    grant = _grant(server, http, member_id)
    client: _Client = grant.request.client
    names = scope_list.format_scope(scope_list.parse_scope(grant.request.scope)).split()
    return ConsentRequest(
        client_id=client.client.client_id, client_name=client.client.name,
        kind=client.client.kind, partner_id=client.client.partner_id,
        partner_name=_partner_name(server, client.client.partner_id),
        scopes=tuple((name, scope_list.describe(name)) for name in names),
        redirect_uri=grant.redirect_uri,
        customer_id=grant.request.payload.data.get("customer_id"),
    )


def decide(server: OAuthServer, http: HttpRequest, member_id: str, *, approve: bool) -> str:
    """The member approved (a code is issued) or denied; the URI to redirect the browser to."""
    grant = _grant(server, http, member_id)
    response = server.create_authorization_response(
        grant.request, grant_user=member_id if approve else None, grant=grant)
    location = dict(response.headers).get("Location")
    if response.status != 302 or location is None:
        body = response.body
        raise AuthorizationRefused(str(body.get("error", "invalid_request")),
                                   str(body.get("error_description", "")), None)
    return str(location)


def _partner_name(server: OAuthServer, partner_id: str | None) -> str | None:
    if partner_id is None:
        return None
    with server.codes.engine.connect() as conn:
        name = conn.execute(select(partners.c.name).where(partners.c.id == partner_id)
                            ).scalar_one_or_none()
    return None if name is None else str(name)


def _grant(server: OAuthServer, http: HttpRequest, member_id: str) -> Any:
    request = server.create_oauth2_request(http)
    try:
        repeated = sorted(name for name, count in Counter(n for n, _ in http.form).items()
                          if count > 1 and name in _SINGLE)
        if repeated:
            raise InvalidRequestError(description=f"repeated parameters: {', '.join(repeated)}")
        return server.get_consent_grant(request, end_user=member_id)
    except OAuth2Error as error:
        location = None
        if error.redirect_uri:
            _, _, headers = error()
            location = dict(headers).get("Location")
        raise AuthorizationRefused(error.error, error.description or "", location) from error
