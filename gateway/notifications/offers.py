"""Offer notifications (marketing): a campaign published for a segment the member is in (a
personal offer, ``InSegment`` in its audience), and a personal coupon assigned to the member.

A campaign's offer is told once per member per campaign (its ``event_id`` is
``campaign:<id>``): a later version (a change, or its end) tells nobody again. Its members are
walked in batches of ``BATCH`` through the primary key of ``member_segments`` (segment_id,
member_id), one transaction per batch; a batch re-run after a crash writes nothing twice.
Segment membership is what the last ``gateway segments refresh`` computed, over members who
consented to the use of their purchase history; each notification also needs the member's
marketing consents (``store.notify``). A campaign already ended when handled tells nobody."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, select

from gateway.core.clock import Clock
from gateway.db.tables import campaign_versions, member_segments
from gateway.db.uow import UnitOfWork
from gateway.notifications.model import Draft, Kind
from gateway.notifications.store import notify
from gateway.outbox import Event
from gateway.promotions import codec
from gateway.promotions.model import COALITION, Campaign, InSegment

BATCH = 500

_VERSION = select(campaign_versions.c.definition).where(
    campaign_versions.c.campaign_id == bindparam("campaign_id"),
    campaign_versions.c.version == bindparam("version"))
_LATEST = (select(campaign_versions.c.definition)
           .where(campaign_versions.c.campaign_id == bindparam("campaign_id"))
           .order_by(campaign_versions.c.version.desc()).limit(1))
# Primary key (segment_id, member_id): a range of one segment, ``limit`` rows.
_MEMBERS = (select(member_segments.c.member_id)
            .where(member_segments.c.segment_id == bindparam("segment_id"),
                   member_segments.c.member_id > bindparam("after"))
            .order_by(member_segments.c.member_id).limit(bindparam("limit")))


def handle(engine: Engine, clock: Clock, event: Event) -> None:
    if event.type == "campaign.published":
        published(engine, clock, str(event.data["campaign_id"]), int(event.data["version"]))
    elif event.type == "coupon.assigned" and event.member_id is not None:
        coupon_assigned(engine, clock, event)


def published(engine: Engine, clock: Clock, campaign_id: str, version: int, *,
              batch: int = BATCH) -> int:
    """Tell every member of the campaign's segments (all of them, when it names several) who
    consents. Returns the notifications written."""
    with UnitOfWork(engine, write=False) as uow:
        definition = uow.conn.execute(_VERSION, {"campaign_id": campaign_id,
                                                 "version": version}).scalar_one_or_none()
    if definition is None:
        return 0
    campaign = codec.loads(definition)
    wanted = sorted({c.segment for c in campaign.audience if isinstance(c, InSegment)})
    now = clock.now()
    if not wanted or (campaign.valid_until is not None and campaign.valid_until <= now):
        return 0
    first, others = wanted[0], wanted[1:]
    written, after = 0, ""
    while True:
        with UnitOfWork(engine) as uow:
            conn, now = uow.conn, clock.now()
            found = list(conn.execute(_MEMBERS, {"segment_id": first, "after": after,
                                                 "limit": batch}).scalars())
            if not found:
                return written
            for member_id in _in_all(conn, found, others):
                if notify(conn, now, offer_draft(campaign, member_id,
                                                 f"campaign:{campaign.id}")):
                    written += 1
            uow.commit()
        after = found[-1]


def _in_all(conn: Connection, member_ids: list[str], segment_ids: list[str]) -> list[str]:
    """Those of ``member_ids`` in every one of ``segment_ids`` (primary key lookups)."""
    kept = member_ids
    for segment_id in segment_ids:
        inside = set(conn.execute(select(member_segments.c.member_id).where(
            member_segments.c.segment_id == segment_id,
            member_segments.c.member_id.in_(kept))).scalars())
        kept = [m for m in kept if m in inside]
    return kept


def coupon_assigned(engine: Engine, clock: Clock, event: Event) -> int | None:
    member_id = event.member_id
    assert member_id is not None
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        definition = conn.execute(_LATEST, {"campaign_id": str(event.data["campaign_id"])}
                                  ).scalar_one_or_none()
        if definition is None:
            return None
        draft = offer_draft(codec.loads(definition), member_id, event.id, coupon=True,
                            coupon_expires=event.data.get("expires_at"))
        written = notify(conn, clock.now(), draft)
        uow.commit()
    return written


def offer_draft(campaign: Campaign, member_id: str, event_id: str, *, coupon: bool = False,
                coupon_expires: str | None = None) -> Draft:
    partner_id = None if campaign.owner == COALITION else campaign.owner
    until = _until(campaign.valid_until)
    body = campaign.description or campaign.name
    if coupon:
        body += (" A personal coupon for it is waiting for you at the till."
                 if coupon_expires is None else
                 f" Your personal coupon is valid until {coupon_expires[:10]}.")
    elif until:
        body += f" Valid until {until}."
    return Draft(member_id, Kind.OFFER_AVAILABLE, event_id,
                 f"A new offer for you: {campaign.name}", body,
                 {"campaign_id": campaign.id, "partner_id": partner_id,
                  "valid_until": None if campaign.valid_until is None
                  else campaign.valid_until.isoformat(),
                  "coupon": coupon},
                 partner_id=partner_id)


def _until(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d")
