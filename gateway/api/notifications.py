"""The member's notifications in the member API (scope ``member``, member tokens only): the feed
(``viewer.notifications``, newest first, a Relay connection), the email preference
(``viewer.notificationPreferences``), and the two mutations ``markNotificationsRead`` and
``setNotificationPreferences``. Every read and change is the token's own member's; an id of
another member's notification changes nothing, exactly like an id that does not exist."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.api.types import PageInfo
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput
from gateway.notifications import model, store

MAX_PAGE = store.MAX_PAGE


@strawberry.type(description="One notification in your feed.")
class Notification:
    id: strawberry.ID
    kind: str = strawberry.field(description=(
        "points_earned, points_returned, points_expiring_30, points_expiring_7, tier_changed "
        "(about your account), offer_available, birthday (marketing: only with your consent)."))
    title: str
    body: str
    data: str = strawberry.field(description="The figures behind it, as a JSON object.")
    created_at: datetime
    read_at: datetime | None

    @staticmethod
    def of(n: model.Notification) -> Notification:
        return Notification(id=strawberry.ID(str(n.id)), kind=n.kind, title=n.title, body=n.body,
                            data=json.dumps(dict(n.data), sort_keys=True),
                            created_at=n.created_at, read_at=n.read_at)


@strawberry.type
class NotificationEdge:
    cursor: str
    node: Notification


@strawberry.type(description="A page of your notifications, newest first.")
class NotificationConnection:
    edges: list[NotificationEdge]
    page_info: PageInfo
    unread_count: int = strawberry.field(description=(
        f"Unread notifications, counted up to {store.MAX_UNREAD_COUNTED + 1} (show "
        f"{store.MAX_UNREAD_COUNTED}+ beyond)."))

    @staticmethod
    def of(page: model.FeedPage) -> NotificationConnection:
        return NotificationConnection(
            edges=[NotificationEdge(cursor=store.encode_cursor(n.id), node=Notification.of(n))
                   for n in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            unread_count=page.unread)


@strawberry.type(description="How you want to hear from us.")
class NotificationPreferences:
    email: bool = strawberry.field(description="Notifications also by email (the feed always "
                                   "has them).")
    email_address_known: bool = strawberry.field(description="Whether we have an email address "
                                                 "for you (you signed up online).")

    @staticmethod
    def of(p: model.Preferences) -> NotificationPreferences:
        return NotificationPreferences(email=p.email_enabled,
                                       email_address_known=p.email_address)


async def feed_of(c: Context, member_id: str, first: int,
                  after: str | None) -> NotificationConnection:
    cap = min(MAX_PAGE, c.services.settings.limits.max_page_size)
    if not 1 <= first <= cap:
        raise InvalidInput(f"first must be between 1 and {cap}", field="first")
    page = await c.run(store.feed, c.services.engine, member_id, first, after)
    return NotificationConnection.of(page)


async def preferences_of(c: Context, member_id: str) -> NotificationPreferences:
    return NotificationPreferences.of(await c.run(store.preferences, c.services.engine,
                                                  member_id))


@strawberry.type
class MarkNotificationsReadSuccess:
    marked: int = strawberry.field(description="How many were unread and are read now.")
    unread_count: int


@strawberry.type
class SetNotificationPreferencesSuccess:
    preferences: NotificationPreferences


_Base = e.InvalidInputError | e.ForbiddenError | e.RateLimitedError | e.UnknownMemberError
MarkNotificationsReadResult = Annotated[MarkNotificationsReadSuccess | _Base,
                                        strawberry.union("MarkNotificationsReadResult")]
SetNotificationPreferencesResult = Annotated[
    SetNotificationPreferencesSuccess | _Base, strawberry.union("SetNotificationPreferencesResult")]
_MARK, _PREFS = errors_of(MarkNotificationsReadResult), errors_of(SetNotificationPreferencesResult)


MAX_ID = 2**63 - 1


def _ids(raw: list[strawberry.ID] | None) -> list[int] | None:
    if raw is None:
        return None
    try:
        ids = [int(str(i)) for i in raw]
    except ValueError as error:
        raise InvalidInput("ids are notification ids from your feed", field="ids") from error
    if not all(0 < i <= MAX_ID for i in ids):  # past a BIGINT: the database would refuse it
        raise InvalidInput("ids are notification ids from your feed", field="ids")
    return ids


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(description="Mark notifications of your feed read: those of ids, or "
                         "every unread one when ids is left out. Scope: member.")
    async def mark_notifications_read(self, info: Info[Context, None],
                                      ids: list[strawberry.ID] | None = None
                                      ) -> MarkNotificationsReadResult:
        c = info.context

        async def run() -> MarkNotificationsReadSuccess:
            mid = c.member_id
            marked = await c.run(store.mark_read, c.services.engine, c.services.clock, mid,
                                 _ids(ids))
            page = await c.run(store.feed, c.services.engine, mid, 1, None)
            return MarkNotificationsReadSuccess(marked=marked, unread_count=page.unread)

        result: MarkNotificationsReadResult = await answer(c, _MARK, Scope.MEMBER, run)
        return result

    @strawberry.mutation(description="Turn notification emails on or off (the feed keeps them "
                         "either way; offers also need your consents). Scope: member.")
    async def set_notification_preferences(self, info: Info[Context, None], email: bool
                                           ) -> SetNotificationPreferencesResult:
        c = info.context

        async def run() -> SetNotificationPreferencesSuccess:
            found = await c.run(store.set_email, c.services.engine, c.services.clock,
                                c.member_id, email)
            return SetNotificationPreferencesSuccess(
                preferences=NotificationPreferences.of(found))

        result: SetNotificationPreferencesResult = await answer(c, _PREFS, Scope.MEMBER, run)
        return result
