"""What a member can be notified of, and which of those are marketing (decision 031).

Transactional notifications (points earned, points returned, points expiring in 30 and in 7
days, a tier change) tell the member about their own account: they always reach the feed, and
the member's email when email is on. Marketing notifications (an offer available to them, a
birthday greeting) are sent only with the member's ``coalition_marketing`` consent, and an offer
of a partner's also needs the member's ``marketing`` consent for that partner; without them
there is neither a feed item nor an email."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    POINTS_EARNED = "points_earned"
    POINTS_RETURNED = "points_returned"
    POINTS_EXPIRING_30 = "points_expiring_30"
    POINTS_EXPIRING_7 = "points_expiring_7"
    TIER_CHANGED = "tier_changed"
    OFFER_AVAILABLE = "offer_available"
    BIRTHDAY = "birthday"


MARKETING = frozenset({Kind.OFFER_AVAILABLE, Kind.BIRTHDAY})
COALITION_MARKETING = "coalition_marketing"  # the consent purpose (gateway.members.viewer)
PARTNER_MARKETING = "marketing"


def is_marketing(kind: Kind) -> bool:
    return kind in MARKETING


@dataclass(frozen=True, slots=True)
class Draft:
    """A notification to write. ``event_id`` is what it answers (an outbox event id, or a job's
    window key): one notification per (member, kind, event_id), however often it is written.
    ``partner_id``: for an offer, the partner whose offer it is (None: the coalition's)."""

    member_id: str
    kind: Kind
    event_id: str
    title: str
    body: str
    data: Mapping[str, Any] = field(default_factory=dict)
    partner_id: str | None = None

    def data_json(self) -> str:
        return json.dumps(dict(self.data), separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class Notification:
    """One item of the member's feed."""

    id: int
    kind: str
    title: str
    body: str
    data: Mapping[str, Any]
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: tuple[Notification, ...]
    has_next: bool
    end_cursor: str | None
    unread: int  # unread notifications, counted up to MAX_UNREAD_COUNTED


@dataclass(frozen=True, slots=True)
class Preferences:
    email_enabled: bool
    email_address: bool  # whether the member has an address to send to (signed up online)
