"""What a partner is sent for one event: ``{"type", "timestamp", "data"}`` as compact JSON.

``data`` is built from an allowlist, never by passing the stored payload through: a field not
named in ``FIELDS`` is dropped, so an event type added later cannot leak something by default.
The coalition's member id is never sent; the member is named by the partner's own customer id
(its open link, looked up at delivery; null once unlinked) and its pairwise ``memberReference``,
the same two the partner GraphQL API shows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from gateway.db.tables import linked_accounts
from gateway.outbox import Event

# stored snake_case key -> the partner's camelCase key (the GraphQL API's spelling)
FIELDS: Mapping[str, str] = {
    "operation_id": "operationId", "kind": "kind", "points": "points",
    "purchase_id": "purchaseId", "channel": "channel", "parent_id": "parentId",
    "hold_id": "holdId", "amount_minor": "amountMinor", "currency": "currency",
    "customer_id": "customerId", "via": "via", "campaign_id": "campaignId",
    "version": "version", "funder": "funder", "valid_from": "validFrom",
    "valid_until": "validUntil", "codes": "codes", "expires_at": "expiresAt",
    "challenge_id": "challengeId", "owner": "owner", "starts_at": "startsAt",
    "ends_at": "endsAt", "window": "window", "completion": "completion", "badge": "badge",
    "bonus_points": "bonusPoints", "bonus_operation_id": "bonusOperationId",
    "draw_id": "drawId", "entries": "entries", "entrants": "entrants", "winners": "winners",
    "entry_list_hash": "entryListHash",
}


def customer_of(conn: Connection, partner_id: str, member_id: str) -> str | None:
    """The partner's customer id for the member: its open link (uq_linked_accounts_open_member,
    one row)."""
    return conn.execute(select(linked_accounts.c.customer_id).where(
        linked_accounts.c.partner_id == partner_id, linked_accounts.c.member_id == member_id,
        linked_accounts.c.closed_at.is_(None))).scalar_one_or_none()


def data_for(event: Event, *, customer_id: str | None,
             member_reference: str | None) -> dict[str, Any]:
    data = {FIELDS[k]: v for k, v in sorted(event.data.items()) if k in FIELDS}
    if event.member_id is not None:
        data.setdefault("customerId", customer_id)
        data["memberReference"] = member_reference
    return data


def body_of(event: Event, data: Mapping[str, Any]) -> bytes:
    return json.dumps({"type": event.type, "timestamp": event.occurred_at.isoformat(),
                       "data": data}, separators=(",", ":"), sort_keys=True).encode()
