"""The one list of OAuth scopes, with descriptions, and what each kind of client may hold.

Every GraphQL field and mutation names one of these scopes; the schema docs quote the
descriptions. A client's allowance (``oauth_clients.allowed_scopes``) is always a subset of the
default allowance of its kind, so a partner client can never be granted ``admin``.

Admin clients hold only ``admin``: an admin token has no partner, so the partner-bound scopes
(points, members, offers) would have nothing to act on, and settlement belongs to finance. Admin
fields check ``admin`` explicitly; least privilege beats a wildcard here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Scope(enum.StrEnum):
    """Every scope a token may carry. A ``StrEnum``: a member *is* its wire string
    (``Scope.POINTS_EARN == "points:earn"``, same hash), so tokens, the database and the JSON
    on the wire keep the strings while code names scopes by member, never by literal."""

    POINTS_EARN = "points:earn"
    POINTS_REDEEM = "points:redeem"
    POINTS_REVERSE = "points:reverse"
    MEMBERS_LINK = "members:link"
    MEMBERS_READ = "members:read"
    OFFERS_MANAGE = "offers:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    SETTLEMENT_READ = "settlement:read"
    SETTLEMENT_CLOSE = "settlement:close"
    ADMIN = "admin"
    MEMBER = "member"
    REPORTS_READ = "reports:read"  # issue 13: campaign effectiveness (decision 034)


@dataclass(frozen=True, slots=True)
class ScopeDoc:
    name: str
    description: str


_DESCRIPTIONS: Mapping[Scope, str] = {
    Scope.POINTS_EARN: "Award points to a member for a purchase at the calling partner.",
    Scope.POINTS_REDEEM: "Let a member pay with points at the calling partner.",
    Scope.POINTS_REVERSE: "Reverse earns and redemptions when a purchase is returned.",
    Scope.MEMBERS_LINK: "Link a partner customer id to a coalition member.",
    Scope.MEMBERS_READ: "Read balances, history and offers of the partner's linked members.",
    Scope.OFFERS_MANAGE: "Create, change and end the calling partner's offers.",
    Scope.SETTLEMENT_READ: "Read settlement periods, statements and reconciliation reports.",
    Scope.SETTLEMENT_CLOSE: "Close a settlement period (irreversible).",
    Scope.ADMIN: "Coalition administration: partners, OAuth clients, rule versions, jobs.",
    Scope.MEMBER: "Act as the signed-in member on their own wallet (the coalition's portal and "
                  "app): viewer, links, consents, codes, donations, merge, export, erasure.",
    Scope.WEBHOOKS_MANAGE: "Manage the calling partner's webhook subscriptions, read and "
                           "replay their deliveries.",
    Scope.REPORTS_READ: "Read effectiveness reports: a partner its own campaigns (reach, cost, "
                        "uplift against the holdout group); a coalition-wide client every one.",
}

SCOPES: tuple[ScopeDoc, ...] = tuple(ScopeDoc(scope.value, _DESCRIPTIONS[scope]) for scope in Scope)

ALL_SCOPES: frozenset[str] = frozenset(Scope)
_ORDER = {scope.value: index for index, scope in enumerate(Scope)}

# "app": the coalition's own first-party apps (portal, mobile app), public clients that get
# member tokens through the authorization code flow with PKCE; never a partner.
CLIENT_KINDS: tuple[str, ...] = ("partner", "finance", "admin", "app")

DEFAULT_ALLOWANCE: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "partner": frozenset({
            Scope.POINTS_EARN, Scope.POINTS_REDEEM, Scope.POINTS_REVERSE,
            Scope.MEMBERS_LINK, Scope.MEMBERS_READ, Scope.OFFERS_MANAGE,
            Scope.WEBHOOKS_MANAGE, Scope.REPORTS_READ,
        }),
        "finance": frozenset({Scope.SETTLEMENT_READ, Scope.SETTLEMENT_CLOSE,
                              Scope.REPORTS_READ}),
        "admin": frozenset({Scope.ADMIN}),
        "app": frozenset({Scope.MEMBER}),
    }
)


def describe(name: str) -> str:
    """The description of one scope; ``KeyError`` for a name not in :class:`Scope`."""
    try:
        return _DESCRIPTIONS[Scope(name)]
    except ValueError:
        raise KeyError(name) from None


def parse_scope(text: str | None) -> frozenset[str]:
    """A space-separated scope string (RFC 6749 §3.3) as a set; ``None`` or blank is empty."""
    return frozenset((text or "").split())


def format_scope(scopes: Iterable[str]) -> str:
    """Scopes as one space-separated string, in the order of :data:`SCOPES` (stable output)."""
    return " ".join(sorted(set(scopes), key=lambda name: (_ORDER.get(name, len(_ORDER)), name)))
