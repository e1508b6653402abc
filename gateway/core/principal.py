"""Who is calling: the partner a token is bound to (or the member, for a member token), the OAuth
client, and its granted scopes."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.ids import ClientId, MemberId, PartnerId


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: ClientId
    partner_id: PartnerId | None
    scopes: frozenset[str]  # the wire strings; ``gateway.auth.scopes.Scope`` members equal them
    kind: str = "partner"  # "partner" | "finance" | "admin" | "member"
    # Set only on member tokens (kind "member"): the member signed in through the coalition's
    # own portal or app. A member token has no partner; a partner token has no member.
    member_id: MemberId | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes
