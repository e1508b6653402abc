"""Segments and personal offers (issue 12, docs/decisions/026-tiers-and-segments.md).

A partner defines a segment: a rule over members' purchases across the coalition's brands,
every clause of which must hold, such as "3 or more purchases at grocery in the last 30 days"
and "none at fuel in the last 30 days". ``gateway segments refresh`` computes who is in each,
over members who consented to the use of their purchase history (``consents``, purpose
``purchase_history``, coalition-wide; the latest event wins), and stores it in
``member_segments``. A campaign whose audience is ``InSegment`` is the personal offer.

What a partner sees: its own segments' definitions and member counts, a count below
``MIN_SHOWN`` shown as ``"<5"``; never a member list, never another brand's purchases.

Consent is checked twice: the refresh leaves out members who have not consented (a member who
withdraws is dropped at the next refresh), and the earn's load step reads the member's latest
``purchase_history`` event with their segments, so a withdrawal excludes them from personal
offers at once, before any refresh (:func:`member_segments_of`).

Cost of a refresh: one pass over active members in primary-key batches of ``BATCH``; per batch
one read of their consent events (``ix_consents_member``), one count of earns per distinct
(partner, days) the segments name (``ix_operations_daily_cap``: member, partner, kind,
recorded_at), and for each segment one ranged delete and one insert of its members in the batch
(primary key). Every statement is bounded by the batch, so the pass is linear in members and in
their recent earns at the named partners; see the decision record for the measured figure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from gateway.core.errors import InvalidInput
from gateway.db.tables import consents, member_segments, members, operations, partners, segments
from gateway.db.uow import UnitOfWork
from gateway.promotions.parsing import qualified_id

MIN_SHOWN = 5  # a count below this is shown as "<5": no partner learns about one member
MAX_SEGMENTS = 100  # per partner: the list needs no paging
MAX_CLAUSES = 5
MAX_DAYS = 366
BATCH = 1000
PURPOSE = "purchase_history"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,47}")


@dataclass(frozen=True, slots=True)
class Clause:
    """Purchases (earns) at ``partner_id`` in the last ``days`` days: at least
    ``min_purchases`` of them, or (``min_purchases`` None) none at all."""

    partner_id: str
    days: int
    min_purchases: int | None

    def holds(self, count: int) -> bool:
        return count == 0 if self.min_purchases is None else count >= self.min_purchases


@dataclass(frozen=True, slots=True)
class Segment:
    id: str  # owner:name
    owner: str
    name: str
    clauses: tuple[Clause, ...]
    member_count: int = 0
    refreshed_at: datetime | None = None

    @property
    def shown_count(self) -> str:
        return f"<{MIN_SHOWN}" if self.member_count < MIN_SHOWN else str(self.member_count)


def rule_to_json(clauses: Sequence[Clause]) -> str:
    return json.dumps([
        {"at": c.partner_id, "min_purchases": c.min_purchases, "days": c.days}
        if c.min_purchases is not None else {"never_at": c.partner_id, "days": c.days}
        for c in clauses], sort_keys=True, separators=(",", ":"))


def rule_from_json(text: str) -> tuple[Clause, ...]:
    return tuple(Clause(d.get("at") or d["never_at"], int(d["days"]),
                        None if "never_at" in d else int(d["min_purchases"]))
                 for d in json.loads(text))


def parse_clauses(raw: Sequence[Mapping[str, Any]]) -> tuple[Clause, ...]:
    """Clauses from ``{at, minPurchases, days}`` or ``{neverAt, days}``; field paths name the
    clause (``clauses[1].days``)."""
    if not 1 <= len(raw) <= MAX_CLAUSES:
        raise InvalidInput(f"a segment has 1 to {MAX_CLAUSES} clauses", field="clauses")
    out: list[Clause] = []
    for i, c in enumerate(raw):
        at, never = c.get("at"), c.get("neverAt")
        if (at is None) == (never is None):
            raise InvalidInput("set exactly one of at and neverAt", field=f"clauses[{i}]")
        days = c.get("days")
        if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"days must be 1 to {MAX_DAYS}", field=f"clauses[{i}].days")
        least = c.get("minPurchases")
        if never is not None:
            if least is not None:
                raise InvalidInput("neverAt takes no minPurchases",
                                   field=f"clauses[{i}].minPurchases")
            out.append(Clause(str(never), days, None))
            continue
        least = 1 if least is None else least
        if not isinstance(least, int) or not 1 <= least <= 1000:
            raise InvalidInput("minPurchases must be 1 to 1000",
                               field=f"clauses[{i}].minPurchases")
        out.append(Clause(str(at), days, least))
    return tuple(out)


def define(engine: Engine, owner: str, name: str, title: str, clauses: tuple[Clause, ...], *,
           actor: str, now: datetime) -> Segment:
    """Store ``owner``'s segment ``name`` (its id is ``owner:name``). The same definition again
    answers the stored one; another definition under a used name is refused (field ``id``)."""
    if not _NAME.fullmatch(name.removeprefix(f"{owner}:")):
        raise InvalidInput("id must be 1 to 48 of a-z 0-9 . _ -", field="id")
    if not title.strip() or len(title) > 200:
        raise InvalidInput("name must be 1 to 200 characters", field="name")
    segment_id = qualified_id(owner, name)
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        known = set(conn.execute(select(partners.c.id).where(
            partners.c.id.in_(sorted({c.partner_id for c in clauses})))).scalars())
        for i, clause in enumerate(clauses):
            if clause.partner_id not in known:
                which = "at" if clause.min_purchases is not None else "neverAt"
                raise InvalidInput(f"no partner {clause.partner_id!r}",
                                   field=f"clauses[{i}].{which}")
        stored = _read(conn, segment_id)
        if stored is not None:  # the id is in the owner's namespace: it is the owner's
            if (stored.name, stored.clauses) != (title, clauses):
                raise InvalidInput("a segment with this id exists with another definition",
                                   field="id")
            return stored
        count = conn.execute(select(func.count()).select_from(segments)
                             .where(segments.c.owner == owner)).scalar_one()
        if count >= MAX_SEGMENTS:
            raise InvalidInput(f"at most {MAX_SEGMENTS} segments per partner", field="id")
        conn.execute(insert(segments), {
            "id": segment_id, "owner": owner, "name": title, "rule": rule_to_json(clauses),
            "created_at": now, "created_by": actor, "member_count": 0})
        uow.commit()
    return Segment(segment_id, owner, title, clauses)


def listed(engine: Engine, owner: str) -> list[Segment]:
    """``owner``'s segments by id (at most ``MAX_SEGMENTS``; ix_segments_owner)."""
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(select(segments).where(segments.c.owner == owner)
                                .order_by(segments.c.id).limit(MAX_SEGMENTS)).all()
    return [_segment(r) for r in rows]


def _read(conn: Connection, segment_id: str) -> Segment | None:
    row = conn.execute(select(segments).where(segments.c.id == segment_id)).one_or_none()
    return None if row is None else _segment(row)


def _segment(row: Any) -> Segment:
    return Segment(row.id, row.owner, row.name, rule_from_json(row.rule),
                   int(row.member_count), row.refreshed_at)


# --- the earn's load step -------------------------------------------------------------------
# The member's segments (ix_member_segments_member) and their latest purchase_history event
# (ix_consents_member: member_id, purpose, id): a few rows each, whatever the table sizes.
_MEMBER_SEGMENTS = select(member_segments.c.segment_id).where(
    member_segments.c.member_id == bindparam("member_id"))
_LATEST_CONSENT = (
    select(consents.c.granted)
    .where(consents.c.member_id == bindparam("member_id"), consents.c.purpose == PURPOSE,
           consents.c.partner_id.is_(None))
    .order_by(consents.c.id.desc()).limit(1))


def member_segments_of(conn: Connection, member_id: str) -> frozenset[str]:
    """The member's segments, or none unless their latest purchase_history choice is consent."""
    if not conn.execute(_LATEST_CONSENT, {"member_id": member_id}).scalar_one_or_none():
        return frozenset()
    return frozenset(str(s) for s in conn.execute(_MEMBER_SEGMENTS, {"member_id": member_id})
                     .scalars())


# --- the refresh ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Refreshed:
    members_scanned: int
    members_consenting: int
    counts: Mapping[str, int]  # segment id -> members in it


_ACTIVE_AFTER = (select(members.c.id).where(members.c.id > bindparam("after"),
                                            members.c.status == "active")
                 .order_by(members.c.id).limit(bindparam("batch")))
_CONSENT_EVENTS = (
    select(consents.c.member_id, consents.c.granted)
    .where(consents.c.member_id.in_(bindparam("ids", expanding=True)),
           consents.c.purpose == PURPOSE, consents.c.partner_id.is_(None))
    .order_by(consents.c.member_id, consents.c.id))
_EARNS_SINCE = (
    select(operations.c.member_id, func.count())
    .where(operations.c.member_id.in_(bindparam("ids", expanding=True)),
           operations.c.partner_id == bindparam("partner_id"), operations.c.kind == "earn",
           operations.c.recorded_at >= bindparam("since",
                                                 type_=operations.c.recorded_at.type))
    .group_by(operations.c.member_id))
# A batch clears (after, high]: consecutive batches cover every member id, so rows of members
# no longer active (merged) between or after the active ones go too; the last clears (after, ∞).
_CLEAR_RANGE = delete(member_segments).where(
    member_segments.c.segment_id == bindparam("segment_id"),
    member_segments.c.member_id > bindparam("after"),
    member_segments.c.member_id <= bindparam("high"))
_CLEAR_REST = delete(member_segments).where(
    member_segments.c.segment_id == bindparam("segment_id"),
    member_segments.c.member_id > bindparam("after"))


def refresh(engine: Engine, now: datetime, *, batch: int = BATCH,
            progress: Callable[[int], None] | None = None) -> Refreshed:
    """Recompute every segment's members (each batch one transaction; the rows of the ids a
    batch spans are replaced in it), then store each segment's count."""
    with UnitOfWork(engine, write=False) as uow:
        defined = [_segment(r) for r in uow.conn.execute(select(segments)
                                                          .order_by(segments.c.id)).all()]
    counts = {s.id: 0 for s in defined}
    scanned = consenting = 0
    after = ""
    while defined:
        with UnitOfWork(engine) as uow:
            conn = uow.conn
            ids = [str(i) for i in conn.execute(_ACTIVE_AFTER, {"after": after,
                                                                "batch": batch}).scalars()]
            if not ids:
                for s in defined:
                    conn.execute(_CLEAR_REST, {"segment_id": s.id, "after": after})
                uow.commit()
                break
            agreed = _consenting(conn, ids)
            earns = _earn_counts(conn, agreed, defined, now)
            for s in defined:
                conn.execute(_CLEAR_RANGE, {"segment_id": s.id, "after": after,
                                            "high": ids[-1]})
                inside = [m for m in agreed if all(
                    c.holds(earns[(c.partner_id, c.days)].get(m, 0)) for c in s.clauses)]
                if inside:
                    conn.execute(insert(member_segments),
                                 [{"segment_id": s.id, "member_id": m} for m in inside])
                counts[s.id] += len(inside)
            uow.commit()
        scanned += len(ids)
        consenting += len(agreed)
        after = ids[-1]
        if progress is not None:
            progress(scanned)
    with UnitOfWork(engine) as uow:
        for segment_id, count in counts.items():
            uow.conn.execute(update(segments).where(segments.c.id == segment_id)
                             .values(member_count=count, refreshed_at=now))
        uow.commit()
    return Refreshed(scanned, consenting, counts)


def _consenting(conn: Connection, ids: list[str]) -> list[str]:
    latest: dict[str, bool] = {}
    for member_id, granted in conn.execute(_CONSENT_EVENTS, {"ids": ids}).all():
        latest[str(member_id)] = bool(granted)  # ordered by id: the last one wins
    return [m for m in ids if latest.get(m)]


def _earn_counts(conn: Connection, ids: list[str], defined: Sequence[Segment],
                 now: datetime) -> dict[tuple[str, int], dict[str, int]]:
    wanted = sorted({(c.partner_id, c.days) for s in defined for c in s.clauses})
    out: dict[tuple[str, int], dict[str, int]] = {k: {} for k in wanted}
    if not ids:  # nobody in the batch consented: nothing to count
        return out
    for partner_id, days in wanted:
        rows = conn.execute(_EARNS_SINCE, {
            "ids": ids, "partner_id": partner_id, "since": now - timedelta(days=days)}).all()
        out[(partner_id, days)] = {str(m): int(n) for m, n in rows}
    return out
