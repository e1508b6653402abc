"""The notifications' event consumer (decision 029's ``Consumer``): points earned and returned,
a tier change after either, and offers (a published campaign for a segment the member is in, a
personal coupon).

Each handler is idempotent under the event's id: the notification it writes is unique per
(member, kind, event_id) and is written in the same transaction as everything else the handler
changes, so the worker may run it any number of times. A tier change is found by comparing the
member's tier now with the last tier they were told about (``notification_tiers``); the
conditional UPDATE that moves it is the one writer of the notification, so two workers handling
two events of one member at once notify one change once. The tier is read at the time of
handling, not of the event: a late or out-of-order event never tells a member a tier they no
longer hold."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.clock import Clock, SystemClock
from gateway.db.tables import notification_tiers, operations, partners
from gateway.db.uow import UnitOfWork
from gateway.notifications import offers
from gateway.notifications.model import Draft, Kind
from gateway.notifications.store import is_active, notify
from gateway.outbox import Consumer, Event
from gateway.promotions import tiers
from gateway.promotions.tiers import TierProgramme

POINTS_EVENTS = frozenset({"points.earned", "points.returned"})
OFFER_EVENTS = frozenset({"campaign.published", "coupon.assigned"})
TYPES = POINTS_EVENTS | OFFER_EVENTS

ProgrammeSource = Callable[[], TierProgramme | None]


def make_consumer(clock: Clock, programme: ProgrammeSource,
                  name: str = "notifications") -> Consumer:
    """The consumer, with the clock that says "now" and the tier programme in force."""

    def handle(engine: Engine, event: Event) -> None:
        if event.type in OFFER_EVENTS:
            offers.handle(engine, clock, event)
        elif event.type in POINTS_EVENTS and event.member_id is not None:
            on_points(engine, clock, programme(), event)

    return Consumer(name=name, types=TYPES, handle=handle)


def on_points(engine: Engine, clock: Clock, programme: TierProgramme | None,
              event: Event) -> None:
    member_id = event.member_id
    assert member_id is not None
    with UnitOfWork(engine) as uow:
        conn, now = uow.conn, clock.now()
        if not is_active(conn, member_id):  # merged or erased since: nothing to tell
            return
        draft = points_draft(conn, event, member_id)
        if draft is not None:
            notify(conn, now, draft)
        if programme is not None:
            tier_change(conn, now, programme, member_id, event.id)
        uow.commit()


def points_draft(conn: Connection, event: Event, member_id: str) -> Draft | None:
    points = int(event.data.get("points", 0))
    if points == 0:
        return None
    name = partner_name(conn, event.partner_id)
    data = {"points": points, "partner_id": event.partner_id, "partner_name": name,
            "operation_id": event.operation_id, "purchase_id": event.data.get("purchase_id")}
    if event.type == "points.earned":
        return Draft(member_id, Kind.POINTS_EARNED, event.id,
                     f"You earned {points} points at {name}",
                     f"{points} points from your purchase at {name} are in your wallet.", data)
    if "purchase_id" not in event.data and _referral_reversal(conn, event.operation_id):
        taken = abs(points)  # decision 035: the referred friend's purchase came back
        return Draft(member_id, Kind.POINTS_RETURNED, event.id,
                     f"{taken} referral points taken back: a purchase was returned",
                     f"A friend you referred returned the purchase that earned you a referral "
                     f"reward at {name}: {taken} points of it were taken back from your wallet.",
                     data)
    if "purchase_id" not in event.data:  # no purchase: a challenge bonus's reversal (032)
        return Draft(member_id, Kind.POINTS_RETURNED, event.id,
                     f"{abs(points)} bonus points taken back: a challenge is no longer complete",
                     f"A return undid a purchase that counted in a challenge you had completed: "
                     f"{abs(points)} points of its bonus were taken back from your wallet.",
                     data)
    if points > 0:  # the points spent on the purchase came back, more than it earned
        return Draft(member_id, Kind.POINTS_RETURNED, event.id,
                     f"{points} points back in your wallet after a return at {name}",
                     f"You returned a purchase at {name}: the points you spent on it came "
                     f"back, less those it earned: {points} points more in your wallet.", data)
    taken = abs(points)
    return Draft(member_id, Kind.POINTS_RETURNED, event.id,
                 f"{taken} points taken back after a return at {name}",
                 f"You returned a purchase at {name}: the {taken} points it earned were taken "
                 "back from your wallet.", data)


def _referral_reversal(conn: Connection, operation_id: str | None) -> bool:
    """Whether a purchase-less return is a referrer's reward taken back (its stored answer is
    a ``ReferralReversed``: it names the bonus operation, as a challenge's reversal does, but
    no challenge). One primary-key read, for these rare events only."""
    if operation_id is None:
        return False
    result = conn.execute(select(operations.c.result).where(operations.c.id == operation_id)
                          ).scalar_one_or_none()
    if result is None:
        return False
    answer = json.loads(result)
    return "bonus_operation_id" in answer and "challenge_id" not in answer


def partner_name(conn: Connection, partner_id: str | None) -> str:
    if partner_id is None:
        return "the coalition"
    found = conn.execute(select(partners.c.name).where(partners.c.id == partner_id)
                         ).scalar_one_or_none()
    return str(found or partner_id)


def tier_change(conn: Connection, now: datetime, programme: TierProgramme, member_id: str,
                event_id: str) -> int | None:
    """Notify the member when their tier now differs from the last one they were told."""
    tier = tiers.tier_at(conn, programme, member_id, now)
    row = conn.execute(select(notification_tiers.c.tier_id, notification_tiers.c.changes)
                       .where(notification_tiers.c.member_id == member_id)).first()
    if row is None:
        last, changes = programme.tiers[0].id, 0  # everyone starts in the first tier, untold
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(notification_tiers).values(
            member_id=member_id, tier_id=last, changes=0, updated_at=now
        ).on_conflict_do_nothing(index_elements=["member_id"]))
    else:
        last, changes = str(row.tier_id), int(row.changes)
    if tier.id == last:
        return None
    moved = conn.execute(update(notification_tiers).where(
        notification_tiers.c.member_id == member_id, notification_tiers.c.tier_id == last,
        notification_tiers.c.changes == changes
    ).values(tier_id=tier.id, changes=changes + 1, updated_at=now)).rowcount
    if moved != 1:  # another handler told them first
        return None
    names = {t.id: t for t in programme.tiers}
    before = names.get(last)
    up = before is None or tier.threshold > before.threshold
    before_name = before.name if before is not None else last
    title = (f"Welcome to {tier.name}!" if up else f"Your tier is now {tier.name}")
    body = (f"Your qualifying points reached {tier.name} (from {before_name})." if up else
            f"Your qualifying points over the last {programme.window_months} months are "
            f"below {before_name}: your tier is now {tier.name}.")
    return notify(conn, now, Draft(member_id, Kind.TIER_CHANGED, f"tier:{changes + 1}", title,
                                   body, {"from": last, "to": tier.id, "up": up,
                                          "event_id": event_id}))


def default_consumer(clock: Clock | None = None) -> Consumer:
    """The consumer as the worker runs it: its clock (the system clock by default) and the
    programme from the catalog the settings name (read once, on first use)."""
    from gateway.promotions.tier_config import load_programme, tiers_path
    from gateway.settings import Settings

    loaded: list[TierProgramme | None] = []

    def programme() -> TierProgramme | None:
        if not loaded:
            loaded.append(load_programme(tiers_path(Settings.from_env().catalog_dir)))
        return loaded[0]

    return make_consumer(clock or SystemClock(), programme)


