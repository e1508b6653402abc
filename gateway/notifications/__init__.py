"""Member notifications (issue 13, docs/decisions/031-notifications.md, docs/notifications.md):
the member's feed and its emails, under the member's consents.

Producers: an event consumer (:data:`CONSUMER`, run by the worker: points earned and returned,
a tier change after either, offers from a published personal-offer campaign or a personal
coupon) and daily jobs (``gateway notify expiring``, ``gateway notify birthdays``); ``gateway
notify send`` sends the queued emails. Nothing here runs on the earn's path: the ledger only
writes its event, in its own transaction (decision 029).

Readers: the member API (``viewer.notifications``, ``markNotificationsRead``,
``setNotificationPreferences``) and the portal's Notifications page."""

from __future__ import annotations

from gateway.notifications.consumer import default_consumer, make_consumer
from gateway.outbox import Consumer

# The worker's consumer: the system clock and the catalog's tier programme (read on first use).
CONSUMER: Consumer = default_consumer()

__all__ = ["CONSUMER", "make_consumer"]
