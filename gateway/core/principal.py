"""Who is calling: the partner a token is bound to, the OAuth client, and its granted scopes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    partner_id: str | None
    scopes: frozenset[str]
    kind: str = "partner"  # "partner" | "finance" | "admin"

    def has(self, scope: str) -> bool:
        return scope in self.scopes
