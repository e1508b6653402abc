"""The one list of OAuth scopes, with descriptions, and what each kind of client may hold.

Every GraphQL field and mutation names one of these scopes; the schema docs quote the
descriptions. A client's allowance (``oauth_clients.allowed_scopes``) is always a subset of the
default allowance of its kind, so a partner client can never be granted ``admin``.

Admin clients hold only ``admin``: an admin token has no partner, so the partner-bound scopes
(points, members, offers) would have nothing to act on, and settlement belongs to finance. Admin
fields check ``admin`` explicitly; least privilege beats a wildcard here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    description: str


SCOPES: tuple[Scope, ...] = (
    Scope("points:earn", "Award points to a member for a purchase at the calling partner."),
    Scope("points:redeem", "Let a member pay with points at the calling partner."),
    Scope("points:reverse", "Reverse earns and redemptions when a purchase is returned."),
    Scope("members:link", "Link a partner customer id to a coalition member."),
    Scope("members:read", "Read balances, history and offers of the partner's linked members."),
    Scope("offers:manage", "Create, change and end the calling partner's offers."),
    Scope("settlement:read", "Read settlement periods, statements and reconciliation reports."),
    Scope("settlement:close", "Close a settlement period (irreversible)."),
    Scope("admin", "Coalition administration: partners, OAuth clients, rule versions, jobs."),
    Scope("member", "Act as the signed-in member on their own wallet (the coalition's portal and "
                    "app): viewer, links, consents, codes, donations, merge, export, erasure."),
)

ALL_SCOPES: frozenset[str] = frozenset(scope.name for scope in SCOPES)
_ORDER = {scope.name: index for index, scope in enumerate(SCOPES)}

# "app": the coalition's own first-party apps (portal, mobile app), public clients that get
# member tokens through the authorization code flow with PKCE; never a partner.
CLIENT_KINDS: tuple[str, ...] = ("partner", "finance", "admin", "app")

DEFAULT_ALLOWANCE: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "partner": frozenset(
            {
                "points:earn",
                "points:redeem",
                "points:reverse",
                "members:link",
                "members:read",
                "offers:manage",
            }
        ),
        "finance": frozenset({"settlement:read", "settlement:close"}),
        "admin": frozenset({"admin"}),
        "app": frozenset({"member"}),
    }
)


def describe(name: str) -> str:
    """The description of one scope; ``KeyError`` for a name not in :data:`SCOPES`."""
    for scope in SCOPES:
        if scope.name == name:
            return scope.description
    raise KeyError(name)


def parse_scope(text: str | None) -> frozenset[str]:
    """A space-separated scope string (RFC 6749 §3.3) as a set; ``None`` or blank is empty."""
    return frozenset((text or "").split())


def format_scope(scopes: Iterable[str]) -> str:
    """Scopes as one space-separated string, in the order of :data:`SCOPES` (stable output)."""
    return " ".join(sorted(set(scopes), key=lambda name: (_ORDER.get(name, len(_ORDER)), name)))
