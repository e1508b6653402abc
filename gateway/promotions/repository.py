"""Campaign versions in the database: publish one (append-only), load the ones in force.

Every writer of campaigns (the CLI, the partner API, tests) publishes through
:func:`publish_version`; every reader of the definitions in force loads them through
:func:`load_published` (and caches the compiled set: ``gateway.promotions.engine``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, case, func, insert, select, text, update
from sqlalchemy.sql.elements import BindParameter

from gateway.db import audit
from gateway.db.fast import execute_rows, insert_values
from gateway.db.tables import campaign_counters, campaign_versions, campaigns, promotion_awards
from gateway.members.repository import MAX_MERGED, MemberRepository
from gateway.outbox import emit
from gateway.promotions import codec
from gateway.promotions.model import COALITION, Campaign, Evaluation, SkipReason, Window


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
    # Who published what, in the same transaction (DESIGN §5: a publish records who and when),
    # beside the other admin acts in audit_log.
    audit.record(conn, at=now, actor=actor, action="campaign.publish",
                 subject=f"{stored.id} v{stored.version}",
                 detail={"owner": stored.owner, "funder": stored.funder,
                         "valid_from": stored.valid_from.isoformat(),
                         "valid_until": None if stored.valid_until is None
                         else stored.valid_until.isoformat()})
    emit(conn, "campaign.published",
         partner_id=None if stored.owner == COALITION else stored.owner, member_id=None,
         at=now, data={"campaign_id": stored.id, "version": stored.version,
                       "funder": stored.funder, "valid_from": stored.valid_from.isoformat(),
                       "valid_until": None if stored.valid_until is None
                       else stored.valid_until.isoformat()})
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


# --- the earn's and the return's statements (issue 12: campaigns in the write path) -------------
# Built once (DESIGN §11): the raw SQLite driver and PostgreSQL's pipeline cache them by object.
_COUNTERS_LOCKED = (
    select(campaign_counters.c.campaign_id, campaign_counters.c.points,
           campaign_counters.c.rewards)
    .where(campaign_counters.c.campaign_id.in_(bindparam("ids", expanding=True)))
    .order_by(campaign_counters.c.campaign_id)
    .with_for_update())  # nothing on SQLite: BEGIN IMMEDIATE serialised the writers already
_ADD_TO_COUNTER = (
    update(campaign_counters)
    .where(campaign_counters.c.campaign_id == bindparam("id"))
    .values(points=campaign_counters.c.points + bindparam("points"),
            rewards=campaign_counters.c.rewards + bindparam("rewards")))
_INSERT_AWARD = insert(promotion_awards)


def _since(name: str) -> Any:
    return bindparam(name, type_=promotion_awards.c.recorded_at.type)


def _window_sums() -> list[Any]:
    sums = []
    for window in (Window.DAY, Window.WEEK, Window.MONTH):
        recent = promotion_awards.c.recorded_at >= _since(str(window))
        sums.append(func.coalesce(func.sum(case((recent, promotion_awards.c.points),
                                                else_=0)), 0))
        sums.append(func.coalesce(func.sum(case((recent, promotion_awards.c.rewards),
                                                else_=0)), 0))
    sums.append(func.coalesce(func.sum(promotion_awards.c.points), 0))
    sums.append(func.coalesce(func.sum(promotion_awards.c.rewards), 0))
    return sums


# The member's usage with that of every account merged into it (one person: decision 037):
# ix_promotion_awards_member, one range per (member, campaign), at most MAX_MERGED members.
_MEMBER_USAGE = (
    select(promotion_awards.c.campaign_id, *_window_sums())
    .where(promotion_awards.c.member_id.in_(bindparam("members", expanding=True)),
           promotion_awards.c.campaign_id.in_(bindparam("ids", expanding=True)))
    .group_by(promotion_awards.c.campaign_id))
_VERSIONS = (
    select(campaign_versions.c.campaign_id, campaign_versions.c.version,
           campaign_versions.c.definition)
    .where(campaign_versions.c.campaign_id.in_(bindparam("ids", expanding=True))))


def lock_counters(conn: Connection, campaign_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """The counters of ``campaign_ids`` as (points, rewards), locked in campaign id order
    (the lock order: purchase, member, counters; decision 020)."""
    if not campaign_ids:
        return {}
    rows = conn.execute(_COUNTERS_LOCKED, {"ids": sorted(set(campaign_ids))}).all()
    return {str(cid): (int(points), int(rewards)) for cid, points, rewards in rows}


def add_to_counters(conn: Connection, deltas: Mapping[str, tuple[int, int]]) -> None:
    """Consume (or, negative, release) (points, rewards) of each campaign's counter."""
    for campaign_id in sorted(deltas):
        points, rewards = deltas[campaign_id]
        conn.execute(_ADD_TO_COUNTER, {"id": campaign_id, "points": points, "rewards": rewards})


def window_starts(now: datetime) -> dict[Window, datetime]:
    """Where each per-member window began at ``now`` (UTC): the day, the ISO week from
    Monday, the calendar month; lifetime has no start."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {Window.DAY: day, Window.WEEK: day - timedelta(days=day.weekday()),
            Window.MONTH: day.replace(day=1)}


def member_usage(conn: Connection, member_id: str, campaign_ids: Sequence[str],
                 now: datetime) -> dict[str, dict[Window, tuple[int, int]]]:
    """The member's (points, count) of each campaign in each window, from the
    ``promotion_awards`` rows of the member and of every account merged into it
    (``MemberRepository.with_absorbed``, bounded by MAX_MERGED; ix_promotion_awards_member);
    reversals count negative (each is written under the member its award went to, so the two
    are in or out of a member set together: decision 037). Reads nothing without campaigns:
    the earn without a member-limited campaign never calls it."""
    if not campaign_ids:
        return {}
    starts = window_starts(now)
    rows = conn.execute(_MEMBER_USAGE, {
        "members": MemberRepository(conn).with_absorbed(member_id, MAX_MERGED),
        "ids": sorted(set(campaign_ids)),
        **{str(w): at for w, at in starts.items()}}).all()
    usage: dict[str, dict[Window, tuple[int, int]]] = {}
    for row in rows:
        values = [int(v) for v in row[1:]]
        usage[str(row[0])] = {
            Window.DAY: (values[0], values[1]), Window.WEEK: (values[2], values[3]),
            Window.MONTH: (values[4], values[5]), Window.LIFETIME: (values[6], values[7])}
    return usage


class AwardRow(NamedTuple):
    """One ``promotion_awards`` row to append: an award (rewards 1) or its reversal. A named
    tuple, not a dataclass: an earn makes one per award, and the raw driver binds it as it is
    (``insert_awards``)."""

    campaign_id: str
    version: int
    funder: str
    member_id: str
    points: int
    rewards: int
    reward_code: str | None = None


# A held-out eligible earn (decision 034): a promotion_awards row of 0 points and 0 rewards
# whose reward_code is this lower-case marker (a till reward's code is upper case, so never
# it). It rides the earn's one awards INSERT and changes no sum the engine or settlement reads.
HOLDOUT_MARKER = "holdout"


def holdout_rows(evaluation: Evaluation, member_id: str) -> tuple[AwardRow, ...]:
    """The marker rows for the campaigns that held this member out."""
    return tuple(AwardRow(s.campaign_id, s.version, s.funder, member_id, 0, 0, HOLDOUT_MARKER)
                 for s in evaluation.skips if s.reason is SkipReason.HOLDOUT)


def insert_awards(conn: Connection, operation_id: str, partner_id: str,
                  rows: Sequence[AwardRow], at: datetime) -> None:
    """Append the rows: one statement for all of them (an earn may apply dozens of
    campaigns; a statement each was half of such an earn's CPU): one executemany on SQLite,
    the rows sent as JSON on PostgreSQL (one round trip)."""
    if len(rows) == 1:
        row = rows[0]
        conn.execute(_INSERT_AWARD, {
            "operation_id": operation_id, "campaign_id": row.campaign_id,
            "version": row.version, "funder": row.funder, "partner_id": partner_id,
            "member_id": row.member_id, "points": row.points, "rewards": row.rewards,
            "reward_code": row.reward_code, "recorded_at": at})
        return
    if conn.dialect.name != "postgresql":
        # SQLite: one multi-row INSERT on the raw path (gateway.db.fast.insert_values), else
        # one executemany of the prebuilt INSERT; both well under the JSON below, whose
        # json_extract parses each row's object once per column.
        stamp = _stamp(conn, at)
        if insert_values(conn, promotion_awards, _AWARD_COLUMNS, [
                (operation_id, r.campaign_id, r.version, r.funder, partner_id, r.member_id,
                 r.points, r.rewards, r.reward_code, stamp) for r in rows]):
            return
        execute_rows(conn, _INSERT_AWARD, {"operation_id": operation_id,
                                           "partner_id": partner_id, "recorded_at": at},
                     AwardRow._fields, rows)
        return
    conn.execute(_INSERT_AWARDS_PG, {
        "operation_id": operation_id, "partner_id": partner_id, "recorded_at": at,
        "rows": json.dumps([{"c": r.campaign_id, "v": r.version, "f": r.funder,
                             "m": r.member_id, "p": r.points, "n": r.rewards,
                             "code": r.reward_code} for r in rows])})


_AWARD_COLUMNS = ("operation_id", "campaign_id", "version", "funder", "partner_id", "member_id",
                  "points", "rewards", "reward_code", "recorded_at")


def _stamp(conn: Connection, at: datetime) -> Any:
    """``at`` as the ``recorded_at`` column binds it on this dialect (UTCDateTime's processor,
    looked up once per dialect)."""
    name = conn.dialect.name
    if name not in _STAMPERS:
        column_type = promotion_awards.c.recorded_at.type
        _STAMPERS[name] = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    process = _STAMPERS[name]
    return at if process is None else process(at)


_STAMPERS: dict[str, Any] = {}

_BULK_BINDS: tuple[BindParameter[Any], ...] = (
    bindparam("operation_id"), bindparam("partner_id"), bindparam("rows"),
    bindparam("recorded_at", type_=promotion_awards.c.recorded_at.type))
_INSERT_AWARDS_PG = text(
    "INSERT INTO promotion_awards (operation_id, campaign_id, version, funder, partner_id, "
    "member_id, points, rewards, reward_code, recorded_at) SELECT :operation_id, r.c, r.v, r.f, "
    ":partner_id, r.m, r.p, r.n, r.code, :recorded_at "
    "FROM json_to_recordset(CAST(:rows AS json)) "  # in the array's order
    "AS r(c text, v integer, f text, m text, p bigint, n integer, code text)"
    ).bindparams(*_BULK_BINDS)


def versions(conn: Connection, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Campaign]:
    """The definitions of these (campaign id, version)s: what a past operation applied."""
    if not keys:
        return {}
    wanted = set(keys)
    rows = conn.execute(_VERSIONS, {"ids": sorted({k[0] for k in keys})}).all()
    return {(str(cid), int(v)): codec.loads(text) for cid, v, text in rows
            if (str(cid), int(v)) in wanted}
