"""Managing campaigns: create, publish a new version, end, list and read, for one owner.

The partner API and the CLI both come here with a parsed campaign (``parsing.parse_campaign``
then ``validation.validate``: ``parse``) and the owner they act for (the token's partner, or
``model.COALITION`` from the CLI). An owner sees and changes only its own campaigns: another
owner's campaign is ``NotFound``, exactly like a missing one. Every change publishes a new,
immutable version through ``repository.publish_version`` in one write transaction.

Idempotency of ``create``: the campaign id is the client's key. The same definition sent again
answers the stored version 1 and writes nothing; a different definition under a used id is
``CampaignExists`` (docs/decisions/022-manage-campaigns.md)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from gateway.core.errors import CampaignExists, InvalidInput, NotFound
from gateway.db.tables import campaign_versions, campaigns
from gateway.db.uow import UnitOfWork
from gateway.promotions import codec, repository, validation
from gateway.promotions import model as m
from gateway.promotions.model import Campaign
from gateway.promotions.parsing import parse_campaign, qualified_id


@dataclass(frozen=True, slots=True)
class Published:
    campaign: Campaign
    published_at: datetime
    published_by: str


@dataclass(frozen=True, slots=True)
class CampaignPage:
    campaigns: tuple[Published, ...]  # the latest version of each, by id
    has_next: bool
    end_cursor: str | None


def parse(raw: Mapping[str, Any], *, owner: str) -> Campaign:
    """The one entry for input: field checks, then the checks across fields."""
    campaign = parse_campaign(raw, owner=owner)
    validation.validate(campaign)
    return campaign


def create(engine: Engine, campaign: Campaign, *, actor: str, now: datetime) -> Published:
    """Version 1 of a new campaign; the same definition again answers the stored version 1."""
    with UnitOfWork(engine) as uow:
        first = _version(uow.conn, campaign.id, 1)
        if first is not None:
            if first.campaign != dataclasses.replace(campaign, version=1):
                raise CampaignExists(campaign.id)
            return first
        stored = repository.publish_version(uow.conn, campaign, actor=actor, now=now)
        uow.commit()
    return Published(stored, now, actor)


def publish(engine: Engine, owner: str, campaign_id: str, raw: Mapping[str, Any], *,
            actor: str, now: datetime) -> Published:
    """The next version of ``owner``'s campaign ``campaign_id``, defined by ``raw`` (its ``id``,
    if given, names the same campaign). ``NotFound`` comes before any input check, so another
    owner's id answers exactly like a missing one."""
    with UnitOfWork(engine) as uow:
        stored_id = _own(uow.conn, owner, campaign_id)
        given = raw.get("id")
        if given is not None and (not isinstance(given, str)
                                  or qualified_id(owner, given) != stored_id):
            raise InvalidInput("id must name the campaign being changed (or be omitted)",
                               field="id")
        local = stored_id.removeprefix(f"{owner}:") if owner != m.COALITION else stored_id
        draft = parse({**raw, "id": local}, owner=owner)
        stored = repository.publish_version(uow.conn, draft, actor=actor, now=now)
        uow.commit()
    return Published(stored, now, actor)


def end(engine: Engine, owner: str, campaign_id: str, at: datetime | None, *, actor: str,
        now: datetime) -> Published:
    """A new version ending the campaign at ``at`` (default now; never in the past, so no
    earn already answered loses its bonus). Ending again at the same time writes nothing."""
    at = now if at is None else at
    if at.tzinfo is None:
        raise InvalidInput("at must be a time with its offset", field="at")
    if at < now:
        raise InvalidInput("at must not be in the past: past operations keep their awards",
                           field="at")
    with UnitOfWork(engine) as uow:
        campaign_id = _own(uow.conn, owner, campaign_id)
        latest = _latest(uow.conn, campaign_id)
        current = latest.campaign
        if current.valid_until is not None and current.valid_until <= at:
            return latest  # already ends by then
        ended = dataclasses.replace(current, valid_until=max(at, current.valid_from))
        stored = repository.publish_version(uow.conn, ended, actor=actor, now=now)
        uow.commit()
    return Published(stored, now, actor)


def versions(engine: Engine, owner: str, campaign_id: str) -> tuple[Published, ...]:
    """Every version of one of ``owner``'s campaigns, oldest first."""
    with UnitOfWork(engine, write=False) as uow:
        campaign_id = _own(uow.conn, owner, campaign_id)
        rows = uow.conn.execute(
            select(campaign_versions.c.definition, campaign_versions.c.published_at,
                   campaign_versions.c.published_by)
            .where(campaign_versions.c.campaign_id == campaign_id)
            .order_by(campaign_versions.c.version)).all()
    return tuple(Published(codec.loads(r.definition), r.published_at, r.published_by)
                 for r in rows)


def listed(engine: Engine, owner: str, first: int, after: str | None) -> CampaignPage:
    """A page of ``owner``'s campaigns (latest version of each), by id."""
    start = None if after is None else _decode(after)
    latest = (select(campaign_versions.c.campaign_id,
                     func.max(campaign_versions.c.version).label("version"))
              .join(campaigns, campaigns.c.id == campaign_versions.c.campaign_id)
              .where(campaigns.c.owner == owner)
              .group_by(campaign_versions.c.campaign_id))
    if start is not None:
        latest = latest.where(campaign_versions.c.campaign_id > start)
    page = latest.order_by(campaign_versions.c.campaign_id).limit(first + 1).subquery()
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(
            select(campaign_versions.c.definition, campaign_versions.c.published_at,
                   campaign_versions.c.published_by)
            .join(page, (page.c.campaign_id == campaign_versions.c.campaign_id)
                  & (page.c.version == campaign_versions.c.version))
            .order_by(campaign_versions.c.campaign_id)).all()
    found = tuple(Published(codec.loads(r.definition), r.published_at, r.published_by)
                  for r in rows[:first])
    has_next = len(rows) > first
    return CampaignPage(found, has_next,
                        cursor_of(found[-1].campaign.id) if found else None)


# --- helpers ----------------------------------------------------------------------------------
def _own(conn: Connection, owner: str, campaign_id: str) -> str:
    """The stored id of ``owner``'s campaign, or ``NotFound`` (another owner's looks missing)."""
    stored_id = qualified_id(owner, campaign_id)
    if repository.owner_of(conn, stored_id) != owner:
        raise NotFound("no campaign of yours has this id", field="campaignId")
    return stored_id


def _version(conn: Connection, campaign_id: str, version: int) -> Published | None:
    row = conn.execute(
        select(campaign_versions.c.definition, campaign_versions.c.published_at,
               campaign_versions.c.published_by)
        .where(campaign_versions.c.campaign_id == campaign_id,
               campaign_versions.c.version == version)).one_or_none()
    return None if row is None else Published(codec.loads(row.definition), row.published_at,
                                              row.published_by)


def _latest(conn: Connection, campaign_id: str) -> Published:
    version = conn.execute(select(func.max(campaign_versions.c.version))
                           .where(campaign_versions.c.campaign_id == campaign_id)).scalar_one()
    found = _version(conn, campaign_id, int(version))
    assert found is not None
    return found


def cursor_of(campaign_id: str) -> str:
    """The opaque cursor of a campaign in a page (``listed``'s ``after``)."""
    return base64.urlsafe_b64encode(f"campaign:{campaign_id}".encode()).decode()


def _decode(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("campaign:"):
        raise InvalidInput("after is not a cursor this API issued", field="after")
    return text[len("campaign:"):]
