"""Challenges in the database: definitions (define, end, read), members' windows, progress
rows and badges. Nothing here commits; each statement names the index it is bounded by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.challenges import parsing
from gateway.challenges.model import COALITION, Challenge, ProgressRow, Window
from gateway.core.errors import ChallengeStarted, InvalidInput, NotFound
from gateway.db import audit
from gateway.db.tables import (
    campaigns,
    challenge_open_days,
    challenge_progress,
    challenge_totals,
    challenge_versions,
    challenge_windows,
    challenges,
    member_badges,
    operations,
)
from gateway.outbox import emit

MAX_CHALLENGES = 100  # in force at once: the consumer and viewer read them all


# --- definitions ------------------------------------------------------------------------------
def find(conn: Connection, challenge_id: str) -> Challenge | None:
    text = conn.execute(select(challenges.c.definition)  # primary key
                        .where(challenges.c.id == challenge_id)).scalar_one_or_none()
    return None if text is None else parsing.loads(str(text))


def define(conn: Connection, challenge: Challenge, *, actor: str, now: datetime) -> Challenge:
    """Store ``challenge``: version 1 of a new one, the stored one again when nothing changed,
    or the next version while it has not started. A started challenge is immutable
    (CHALLENGE_STARTED); only :func:`end` may still move its end."""
    stored = find(conn, challenge.id)
    if stored is None:
        running = conn.execute(select(func.count()).select_from(challenges).where(
            or_(challenges.c.ends_at.is_(None), challenges.c.ends_at > now))).scalar_one()
        if running >= MAX_CHALLENGES:  # the consumer and the views read them all
            raise InvalidInput(f"{MAX_CHALLENGES} challenges are running or due already; end "
                               "one first", field="id")
        first = replace(challenge, version=1)
        conn.execute(insert(challenges), _row(first, now))
        # promotion_awards rows name their campaign; the challenge is one, with no versions
        # (the campaign engine loads versions only, so it never evaluates it).
        conn.execute(insert(campaigns), {"id": first.campaign_id, "owner": first.owner,
                                         "created_at": now, "created_by": actor})
        return _publish(conn, first, actor=actor, now=now, created=True)
    if stored.owner != challenge.owner:
        raise NotFound("no challenge of yours has this id", field="id")
    if replace(stored, version=1) == replace(challenge, version=1):
        return stored
    if stored.starts_at <= now:
        raise ChallengeStarted(stored.id)
    if challenge.starts_at < now:
        raise InvalidInput("starts_at must not be in the past", field="startsAt")
    return _replace(conn, replace(challenge, version=stored.version + 1), actor, now)


def end(conn: Connection, owner: str, challenge_id: str, at: datetime, *, actor: str,
        now: datetime) -> Challenge:
    """A new version ending the challenge at ``at`` (never in the past: windows already
    counted keep what they counted). Ending again at the same time or later changes nothing."""
    stored = find(conn, challenge_id)
    if stored is None or stored.owner != owner:
        raise NotFound("no challenge of yours has this id", field="id")
    if at < now:
        raise InvalidInput("at must not be in the past", field="at")
    if stored.ends_at is not None and stored.ends_at <= at:
        return stored
    return _replace(conn, replace(stored, ends_at=max(at, stored.starts_at),
                                  version=stored.version + 1), actor, now)


def _replace(conn: Connection, challenge: Challenge, actor: str, now: datetime) -> Challenge:
    conn.execute(update(challenges).where(challenges.c.id == challenge.id)
                 .values(_row(challenge, now)))
    return _publish(conn, challenge, actor=actor, now=now, created=False)


def _publish(conn: Connection, c: Challenge, *, actor: str, now: datetime,
             created: bool) -> Challenge:
    conn.execute(insert(challenge_versions), {
        "challenge_id": c.id, "version": c.version, "definition": parsing.dumps(c),
        "published_at": now, "published_by": actor})
    audit.record(conn, at=now, actor=actor, action="challenge.publish",
                 subject=f"{c.id} v{c.version}", detail={"owner": c.owner, "created": created})
    emit(conn, "challenge.published", partner_id=None if c.owner == COALITION else c.owner,
         member_id=None, at=now, data={
             "challenge_id": c.id, "version": c.version, "owner": c.owner,
             "starts_at": c.starts_at.isoformat(),
             "ends_at": None if c.ends_at is None else c.ends_at.isoformat()})
    return c


def _row(c: Challenge, now: datetime) -> dict[str, Any]:
    return {"id": c.id, "owner": c.owner, "version": c.version,
            "definition": parsing.dumps(c), "starts_at": c.starts_at, "ends_at": c.ends_at,
            "updated_at": now}


def owned(conn: Connection, owner: str) -> list[Challenge]:
    rows = conn.execute(select(challenges.c.definition)  # ix_challenges_owner
                        .where(challenges.c.owner == owner).order_by(challenges.c.id)
                        .limit(MAX_CHALLENGES)).scalars()
    return [parsing.loads(str(t)) for t in rows]


_IN_FORCE = (
    select(challenges.c.definition)
    .where(challenges.c.starts_at <= bindparam("at", type_=challenges.c.starts_at.type),
           or_(challenges.c.ends_at.is_(None),
               challenges.c.ends_at > bindparam("at", type_=challenges.c.starts_at.type)))
    .order_by(challenges.c.id).limit(MAX_CHALLENGES))


def in_force(conn: Connection, at: datetime) -> list[Challenge]:
    """The challenges running at ``at`` (a small table: the coalition's and partners'
    definitions, at most ``MAX_CHALLENGES`` read)."""
    return [parsing.loads(str(t)) for t in conn.execute(_IN_FORCE, {"at": at}).scalars()]


# --- windows ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WindowState:
    window: Window
    done: int
    target: int
    completions: int
    completed_at: datetime | None
    bonus_operation_id: str | None
    bonus_points: int


_W = challenge_windows.c
_LATEST = (select(challenge_windows)  # ix_challenge_windows_latest: one row
           .where(_W.challenge_id == bindparam("challenge_id"),
                  _W.member_id == bindparam("member_id"),
                  _W.starts_at <= bindparam("at", type_=_W.starts_at.type))
           .order_by(_W.starts_at.desc()).limit(1))
_ONE = select(challenge_windows).where(  # primary key
    _W.challenge_id == bindparam("challenge_id"), _W.member_id == bindparam("member_id"),
    _W.window_key == bindparam("window_key"))


def _state(row: Any) -> WindowState:
    return WindowState(Window(row.window_key, row.starts_at, row.ends_at,
                              row.completed_at is not None),
                       int(row.done), int(row.target), int(row.completions), row.completed_at,
                       row.bonus_operation_id, int(row.bonus_points))


def latest_window(conn: Connection, challenge_id: str, member_id: str,
                  at: datetime) -> WindowState | None:
    row = conn.execute(_LATEST, {"challenge_id": challenge_id, "member_id": member_id,
                                 "at": at}).first()
    return None if row is None else _state(row)


def window(conn: Connection, challenge_id: str, member_id: str, key: str) -> WindowState | None:
    row = conn.execute(_ONE, {"challenge_id": challenge_id, "member_id": member_id,
                              "window_key": key}).first()
    return None if row is None else _state(row)


def save_window(conn: Connection, challenge_id: str, member_id: str, state: WindowState,
                *, now: datetime, new: bool) -> None:
    values = {"starts_at": state.window.starts_at, "ends_at": state.window.ends_at,
              "done": state.done, "target": state.target, "completions": state.completions,
              "completed_at": state.completed_at,
              "bonus_operation_id": state.bonus_operation_id,
              "bonus_points": state.bonus_points, "updated_at": now}
    if new:
        conn.execute(insert(challenge_windows), {
            "challenge_id": challenge_id, "member_id": member_id,
            "window_key": state.window.key, **values})
        return
    conn.execute(update(challenge_windows).where(  # primary key
        _W.challenge_id == challenge_id, _W.member_id == member_id,
        _W.window_key == state.window.key).values(values))


# --- progress rows ----------------------------------------------------------------------------
_P = challenge_progress.c


def add_progress(conn: Connection, *, event_id: str, challenge_id: str, member_id: str,
                 window_key: str, row: ProgressRow, operation_id: str, now: datetime) -> bool:
    """Append one progress row; False when this event was handled for this challenge already
    (uq_challenge_progress_event): a replay changes nothing."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(dialect.insert(challenge_progress).values(
        event_id=event_id, challenge_id=challenge_id, member_id=member_id,
        window_key=window_key, purchase_operation_id=row.purchase_operation_id,
        operation_id=operation_id, partner_id=row.partner_id, occurred_at=row.occurred_at,
        amount_minor=row.amount_minor, currency=row.currency, recorded_at=now,
    ).on_conflict_do_nothing(index_elements=["event_id", "challenge_id"])
        .returning(_P.id)).first()
    return inserted is not None


_WINDOW_ROWS = (select(_P.purchase_operation_id, _P.partner_id, _P.occurred_at, _P.amount_minor,
                       _P.currency)  # ix_challenge_progress_window: this window's rows only
                .where(_P.challenge_id == bindparam("challenge_id"),
                       _P.member_id == bindparam("member_id"),
                       _P.window_key == bindparam("window_key"))
                .order_by(_P.id))


def window_rows(conn: Connection, challenge_id: str, member_id: str,
                window_key: str) -> list[ProgressRow]:
    return [ProgressRow(r[0], r[1], r[2], int(r[3]), r[4]) for r in conn.execute(
        _WINDOW_ROWS, {"challenge_id": challenge_id, "member_id": member_id,
                       "window_key": window_key})]


@dataclass(frozen=True, slots=True)
class Counted:
    """Where an earn counted: a challenge, its member and window, and the purchase."""

    challenge_id: str
    member_id: str
    window_key: str
    row: ProgressRow


_COUNTED = (select(_P.challenge_id, _P.member_id, _P.window_key, _P.purchase_operation_id,
                   _P.partner_id, _P.occurred_at, _P.amount_minor, _P.currency)
            .where(_P.purchase_operation_id == bindparam("op"),  # ix_challenge_progress_purchase
                   _P.operation_id == bindparam("op"))
            .order_by(_P.challenge_id))


def counted(conn: Connection, earn_operation_id: str) -> list[Counted]:
    """Every challenge window the earn counted in (a return undoes it there)."""
    return [Counted(r[0], r[1], r[2], ProgressRow(r[3], r[4], r[5], int(r[6]), r[7]))
            for r in conn.execute(_COUNTED, {"op": earn_operation_id})]


_EARN_OF = select(operations.c.partner_id, operations.c.occurred_at, operations.c.amount_minor,
                  operations.c.currency).where(operations.c.id == bindparam("op"),  # primary key
                                               operations.c.kind == "earn")


def earn_of(conn: Connection, earn_operation_id: str) -> ProgressRow | None:
    """The earn as a progress row, read from its operation (a return that came first)."""
    row = conn.execute(_EARN_OF, {"op": earn_operation_id}).first()
    if row is None or row.amount_minor is None or row.currency is None:
        return None
    return ProgressRow(earn_operation_id, str(row.partner_id), row.occurred_at,
                       int(row.amount_minor), str(row.currency))


# --- badges -----------------------------------------------------------------------------------
_B = member_badges.c


def award_badge(conn: Connection, member_id: str, challenge: Challenge, window_key: str,
                now: datetime) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(member_badges).values(
        member_id=member_id, challenge_id=challenge.id, window_key=window_key,
        badge=challenge.badge, awarded_at=now, revoked_at=None)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["member_id", "challenge_id", "window_key"],
        set_={"awarded_at": now, "revoked_at": None}))


def revoke_badge(conn: Connection, member_id: str, challenge_id: str, window_key: str,
                 now: datetime) -> None:
    conn.execute(update(member_badges).where(  # primary key
        _B.member_id == member_id, _B.challenge_id == challenge_id,
        _B.window_key == window_key).values(revoked_at=now))


@dataclass(frozen=True, slots=True)
class BadgeCount:
    badge: str
    times: int
    first_awarded_at: datetime
    last_awarded_at: datetime


def badges(conn: Connection, member_id: str) -> list[BadgeCount]:
    """The member's badges, each with how often it was earned (revoked ones left out)."""
    rows = conn.execute(
        select(_B.badge, func.count(), func.min(_B.awarded_at), func.max(_B.awarded_at))
        .where(_B.member_id == member_id, _B.revoked_at.is_(None))  # ix_member_badges_member
        .group_by(_B.badge).order_by(_B.badge))
    return [BadgeCount(str(r[0]), int(r[1]), r[2], r[3]) for r in rows]


# --- a partner's counts -----------------------------------------------------------------------
# Kept by the consumer beside the windows they count (progress.py ``_recount``), read here by
# primary key: the listing never reads the windows, whose number grows with history.
@dataclass(frozen=True, slots=True)
class Counts:
    in_progress: int
    completed: int


_T = challenge_totals.c
_D = challenge_open_days.c


def last_open_day(deadline: datetime) -> date:
    """The last UTC day on which a window open until ``deadline`` (exclusive) is open."""
    return (deadline - timedelta(microseconds=1)).astimezone(UTC).date()


def _upsert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def move_open(conn: Connection, challenge_id: str, last_day: date, by: int) -> None:
    """One window more (``by`` 1) or less (-1) in progress until ``last_day`` (primary key)."""
    conn.execute(_upsert(conn, challenge_open_days).values(
        challenge_id=challenge_id, last_day=last_day, members=by).on_conflict_do_update(
        index_elements=["challenge_id", "last_day"], set_={"members": _D.members + by}))


def move_completed(conn: Connection, challenge_id: str, by: int) -> None:
    conn.execute(_upsert(conn, challenge_totals).values(
        challenge_id=challenge_id, members_completed=by).on_conflict_do_update(
        index_elements=["challenge_id"], set_={"members_completed": _T.members_completed + by}))


def other_completion(conn: Connection, challenge_id: str, member_id: str,
                     window_key: str) -> bool:
    """Whether the member has a standing completion of the challenge in another window
    (ix_challenge_windows_latest: this member's windows of this challenge; the consumer's
    path only, on a completion or its undoing)."""
    return conn.execute(select(_W.window_key).where(
        _W.challenge_id == challenge_id, _W.member_id == member_id,
        _W.window_key != window_key, _W.completed_at.is_not(None)).limit(1)).first() is not None


def counts(conn: Connection, challenge_ids: Sequence[str], now: datetime) -> dict[str, Counts]:
    """Members with a standing completion (challenge_totals, primary key) and windows in
    progress still open today (challenge_open_days, a primary-key range: from today to the
    furthest deadline, at most the window's length in days), per challenge."""
    if not challenge_ids:
        return {}
    ids = list(challenge_ids)
    completed: dict[str, int] = dict(conn.execute(
        select(_T.challenge_id, _T.members_completed).where(_T.challenge_id.in_(ids))).all())
    today = now.astimezone(UTC).date()
    open_: dict[str, int] = dict(conn.execute(
        select(_D.challenge_id, func.sum(_D.members))
        .where(_D.challenge_id.in_(ids), _D.last_day >= today)
        .group_by(_D.challenge_id)).all())
    return {cid: Counts(int(open_.get(cid) or 0), int(completed.get(cid) or 0)) for cid in ids}
