"""Campaign versions in the database: publish one (append-only), load the ones in force.

Every writer of campaigns (the CLI, the partner API, tests) publishes through
:func:`publish_version`; every reader of the definitions in force loads them through
:func:`load_published` (and caches the compiled set: ``gateway.promotions.engine``)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from gateway.db.tables import campaign_counters, campaign_versions, campaigns
from gateway.promotions import codec
from gateway.promotions.model import Campaign


def publish_version(conn: Connection, campaign: Campaign, *, actor: str,
                    now: datetime) -> Campaign:
    """Store ``campaign`` as the next version of its id (a new campaign: version 1, with its
    header and its counters), and return it with that version. The caller's transaction
    decides; the primary key refuses a concurrent publish of the same version."""
    current = conn.execute(
        select(func.max(campaign_versions.c.version))
        .where(campaign_versions.c.campaign_id == campaign.id)
    ).scalar_one_or_none()
    if current is None:
        conn.execute(insert(campaigns), {"id": campaign.id, "owner": campaign.owner,
                                         "created_at": now, "created_by": actor})
        conn.execute(insert(campaign_counters), {"campaign_id": campaign.id})
    stored = dataclasses.replace(campaign, version=(current or 0) + 1)
    conn.execute(insert(campaign_versions), {
        "campaign_id": stored.id, "version": stored.version,
        "definition": codec.dumps(stored), "published_at": now, "published_by": actor,
    })
    return stored


def owner_of(conn: Connection, campaign_id: str) -> str | None:
    return conn.execute(select(campaigns.c.owner).where(campaigns.c.id == campaign_id)
                        ).scalar_one_or_none()


def load_published(conn: Connection) -> list[Campaign]:
    """The latest version of every campaign (ended ones too: their window says so)."""
    latest = (select(campaign_versions.c.campaign_id,
                     func.max(campaign_versions.c.version).label("version"))
              .group_by(campaign_versions.c.campaign_id).subquery())
    rows = conn.execute(
        select(campaign_versions.c.definition)
        .join(latest, (latest.c.campaign_id == campaign_versions.c.campaign_id)
              & (latest.c.version == campaign_versions.c.version))
        .order_by(campaign_versions.c.campaign_id)
    ).scalars()
    return [codec.loads(text) for text in rows]


def version_stamp(conn: Connection) -> int:
    """Changes whenever a version is published (the cache's reload check)."""
    return int(conn.execute(select(func.count()).select_from(campaign_versions)).scalar_one())
