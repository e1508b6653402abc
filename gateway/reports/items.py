"""Programme items (campaigns, challenges and draws) as the effectiveness report
sees them: one shape, and a source per kind that answers three questions with its own queries.

An :class:`ItemSource` says what an item is (:class:`ProgrammeItem`: owner, funder, partners,
window), what it gave (:meth:`ItemSource.given`: members reached, rewards, points, and the points
priced per earn operation for the settlement cost), and who was treated or held out
(:meth:`ItemSource.groups_sql`: a SELECT of ``member_id, treated, holdout`` the report joins to
the members' spend). Everything else (spend, redemptions, the interval) is generic in
``gateway.reports.effectiveness``. A challenge or a draw plugs in with a source of its own over
its tables; :class:`CampaignSource` is the campaigns' one, over ``promotion_awards`` (read through
``ix_promotion_awards_funder``: the funder's awards since the item started, never the table).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, select, text

from gateway.challenges import repository as challenge_repository
from gateway.challenges.model import CAMPAIGN_PREFIX as CHALLENGE_PREFIX
from gateway.challenges.model import Challenge
from gateway.db.tables import campaign_versions, campaigns, challenges, draws, partners
from gateway.promotions import codec
from gateway.promotions.model import COALITION
from gateway.promotions.repository import HOLDOUT_MARKER


@dataclass(frozen=True, slots=True)
class ProgrammeItem:
    kind: str  # "campaign" (later "challenge", "draw")
    id: str
    name: str
    owner: str  # a partner id, or "coalition"
    funder: str
    partners: frozenset[str]  # where its members' spend is measured
    starts: datetime  # UTC; the window is [starts, ends)
    ends: datetime | None
    holdout_percent: int = 0


@dataclass(frozen=True, slots=True)
class PricedPoints:
    """Points an item issued (> 0) or took back (< 0) in operations rated with one rule."""

    partner_id: str
    rule_version: int | None
    issued: int
    returned: int


@dataclass(frozen=True, slots=True)
class Given:
    members: int  # members who got it at least once
    rewards: int  # times it was given, net of full reversals
    points: int  # net of reversals
    priced: tuple[PricedPoints, ...] = ()


class ItemSource(Protocol):
    kind: str

    def item(self, conn: Connection, item_id: str) -> ProgrammeItem | None: ...

    def items(self, conn: Connection, owner: str | None) -> Sequence[ProgrammeItem]: ...

    def given(self, conn: Connection, item: ProgrammeItem) -> Given: ...

    def groups_sql(self, conn: Connection,
                   item: ProgrammeItem) -> tuple[str, Mapping[str, Any]]:
        """A SELECT of (member_id, treated 0/1, holdout 0/1), one row per member."""
        ...


def stored(conn: Connection, at: datetime) -> Any:
    """A bound as its column stores it (naive UTC; SQLite: ISO text), for raw text SQL."""
    naive = at.astimezone(UTC).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else naive


# The funder's awards of this campaign since it started (ix_promotion_awards_funder: funder,
# recorded_at); reversals come later than their awards, so no upper bound.
_AWARDS = ("FROM promotion_awards a WHERE a.funder = :funder AND a.recorded_at >= :since "
           "AND a.campaign_id = :item")
_GIVEN = text(
    "SELECT COUNT(DISTINCT CASE WHEN a.rewards > 0 THEN a.member_id END), "
    "COALESCE(SUM(a.rewards), 0), COALESCE(SUM(a.points), 0) " + _AWARDS)
_PRICED = text(
    "SELECT o.partner_id, COALESCE(o.rule_version, p.rule_version), "
    "SUM(CASE WHEN a.points > 0 THEN a.points ELSE 0 END), "
    "SUM(CASE WHEN a.points < 0 THEN -a.points ELSE 0 END) "
    "FROM promotion_awards a JOIN operations o ON o.id = a.operation_id "
    "LEFT JOIN operations p ON p.id = o.parent_id "
    "WHERE a.funder = :funder AND a.recorded_at >= :since AND a.campaign_id = :item "
    "AND a.points <> 0 GROUP BY o.partner_id, COALESCE(o.rule_version, p.rule_version) "
    "ORDER BY 1, 2")
_GROUPS = ("SELECT a.member_id AS member_id, "
           "MAX(CASE WHEN a.rewards > 0 THEN 1 ELSE 0 END) AS treated, "
           f"MAX(CASE WHEN a.reward_code = '{HOLDOUT_MARKER}' THEN 1 ELSE 0 END) AS holdout "
           + _AWARDS + " GROUP BY a.member_id")


class CampaignSource:
    """Campaigns: the versions' union window (first start, latest version's end), the latest
    version's name, partners and holdout; awards and holdout markers from promotion_awards."""

    kind = "campaign"

    def item(self, conn: Connection, item_id: str) -> ProgrammeItem | None:
        rows = conn.execute(
            select(campaign_versions.c.definition)  # the campaign's versions (primary key)
            .where(campaign_versions.c.campaign_id == item_id)
            .order_by(campaign_versions.c.version)).scalars().all()
        if not rows:
            return None
        versions = [codec.loads(r) for r in rows]
        last = versions[-1]
        return ProgrammeItem(
            self.kind, last.id, last.name, last.owner, last.funder,
            frozenset().union(*(v.partners for v in versions)),
            min(v.valid_from for v in versions), last.valid_until, last.holdout_percent)

    def items(self, conn: Connection, owner: str | None) -> Sequence[ProgrammeItem]:
        """Every campaign of ``owner`` (None: all), by id; bounded by the owner's campaigns."""
        query = select(campaigns.c.id).order_by(campaigns.c.id)
        if owner is not None:
            query = query.where(campaigns.c.owner == owner)
        found = (self.item(conn, str(i)) for i in conn.execute(query).scalars())
        return [f for f in found if f is not None]

    def _params(self, conn: Connection, item: ProgrammeItem) -> dict[str, Any]:
        return {"funder": item.funder, "since": stored(conn, item.starts), "item": item.id}

    def given(self, conn: Connection, item: ProgrammeItem) -> Given:
        params = self._params(conn, item)
        members, rewards, points = conn.execute(_GIVEN, params).one()
        priced = tuple(PricedPoints(str(p), None if v is None else int(v), int(i), int(r))
                       for p, v, i, r in conn.execute(_PRICED, params))
        return Given(int(members or 0), int(rewards or 0), int(points or 0), priced)

    def groups_sql(self, conn: Connection,
                   item: ProgrammeItem) -> tuple[str, Mapping[str, Any]]:
        return _GROUPS, self._params(conn, item)


def _every_partner(conn: Connection) -> frozenset[str]:
    """Where a coalition-wide item's members' spend is measured: every partner (a few rows)."""
    return frozenset(str(p) for p in conn.execute(select(partners.c.id)).scalars())


class ChallengeSource(CampaignSource):
    """Challenges (decision 032): a completion's bonus is a promotion_awards row of campaign
    ``challenge:<id>`` funded by the owner, so what it gave is read exactly like a campaign's.
    A challenge has no holdout group: its uplift has no control and reads as not measured."""

    kind = "challenge"

    def _item(self, conn: Connection, c: Challenge) -> ProgrammeItem:
        return ProgrammeItem(self.kind, c.id, c.name, c.owner, c.funder,
                             c.partners or _every_partner(conn), c.starts_at, c.ends_at)

    def item(self, conn: Connection, item_id: str) -> ProgrammeItem | None:
        found = challenge_repository.find(conn, item_id)  # primary key
        return None if found is None else self._item(conn, found)

    def items(self, conn: Connection, owner: str | None) -> Sequence[ProgrammeItem]:
        query = select(challenges.c.id).order_by(challenges.c.id)  # ix_challenges_owner
        if owner is not None:
            query = query.where(challenges.c.owner == owner)
        found = (self.item(conn, str(i)) for i in conn.execute(query).scalars())
        return [f for f in found if f is not None]

    def _params(self, conn: Connection, item: ProgrammeItem) -> dict[str, Any]:
        return {"funder": item.funder, "since": stored(conn, item.starts),
                "item": CHALLENGE_PREFIX + item.id}


# A draw's entries (ix_draw_entries_draw: draw_id first): net entries per member.
_DRAW_GIVEN = text(
    "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM (SELECT member_id, SUM(entries) AS n "
    "FROM draw_entries WHERE draw_id = :item GROUP BY member_id HAVING SUM(entries) > 0) e")
_DRAW_GROUPS = ("SELECT member_id, 1 AS treated, 0 AS holdout FROM draw_entries "
                "WHERE draw_id = :item GROUP BY member_id HAVING SUM(entries) > 0")


class DrawSource:
    """Prize draws (decision 033): members reached are its entrants, rewards its net entries;
    a draw issues no points (its prizes are not points), and has no holdout group."""

    kind = "draw"

    def item(self, conn: Connection, item_id: str) -> ProgrammeItem | None:
        row = conn.execute(select(  # primary key
            draws.c.id, draws.c.name, draws.c.owner_partner_id, draws.c.opens_at,
            draws.c.closes_at, draws.c.purchase_partners).where(draws.c.id == item_id)).first()
        if row is None:
            return None
        owner = row.owner_partner_id or COALITION
        where = (frozenset(json.loads(row.purchase_partners)) if row.purchase_partners
                 else frozenset({owner}) if owner != COALITION else _every_partner(conn))
        return ProgrammeItem(self.kind, row.id, row.name, owner, owner, where, row.opens_at,
                             row.closes_at)

    def items(self, conn: Connection, owner: str | None) -> Sequence[ProgrammeItem]:
        query = select(draws.c.id).order_by(draws.c.id)
        if owner is not None:  # ix_draws_owner
            query = query.where(draws.c.owner_partner_id == owner)
        found = (self.item(conn, str(i)) for i in conn.execute(query).scalars())
        return [f for f in found if f is not None]

    def given(self, conn: Connection, item: ProgrammeItem) -> Given:
        members, entries = conn.execute(_DRAW_GIVEN, {"item": item.id}).one()
        return Given(int(members or 0), int(entries or 0), 0)

    def groups_sql(self, conn: Connection,
                   item: ProgrammeItem) -> tuple[str, Mapping[str, Any]]:
        return _DRAW_GROUPS, {"item": item.id}


def visible(item: ProgrammeItem, partner_id: str | None) -> bool:
    """A partner sees its own items only (None: the coalition's view, every item)."""
    return partner_id is None or item.owner == partner_id


__all__ = ["COALITION", "CampaignSource", "ChallengeSource", "DrawSource", "Given", "ItemSource",
           "PricedPoints", "ProgrammeItem", "visible"]
