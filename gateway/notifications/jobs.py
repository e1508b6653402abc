"""The scheduled notification jobs (``gateway notify expiring`` and ``gateway notify
birthdays``, run daily by the operator's scheduler). Both are idempotent and bounded per batch.

Expiring points: for each window (30 and 7 days) a cursor over lots in (expires_at, id) order
(``ix_lots_expires_at``), kept in ``notification_jobs``, walks the lots whose expiry has come
within the window since the last run: for each (member, expiry day) of a batch one notification
"N points expire on D", N the member's points left in every lot expiring that day (a range of
``ix_lots_member_expiry``), keyed ``expiring:<days>:<day>``. So each member hears once per
window per expiry day, a missed day is caught up at the next run, and a run repeated writes
nothing. The 30-day job leaves out days already within 7 days (the 7-day notice tells them).
A lot that reaches the wallet with an expiry the cursor has already passed (a merge moving an
old lot) is not told; its points still show in the wallet's expiring list.

Birthdays: members in primary-key batches; a member whose birthday is today (UTC; the 29th of
February is celebrated on the 28th in other years) gets one greeting per year, keyed
``birthday:<year>`` (marketing: only with consent)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, Engine, bindparam, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.tables import lots, members, notification_jobs
from gateway.db.uow import UnitOfWork
from gateway.notifications.model import Draft, Kind
from gateway.notifications.store import notify

BATCH = 1000
WINDOWS = {30: Kind.POINTS_EXPIRING_30, 7: Kind.POINTS_EXPIRING_7}
Progress = Callable[[int, int], None]  # (rows scanned so far, notifications written so far)


@dataclass(frozen=True, slots=True)
class JobRun:
    scanned: int
    notified: int


# ix_lots_expires_at (expires_at, id) from the cursor up to the window's end: ``limit`` rows.
_LOTS = (select(lots.c.id, lots.c.member_id, lots.c.expires_at, lots.c.remaining)
         .where(tuple_(lots.c.expires_at, lots.c.id)
                > tuple_(bindparam("at", type_=lots.c.expires_at.type), bindparam("id")),
                lots.c.expires_at <= bindparam("until", type_=lots.c.expires_at.type))
         .order_by(lots.c.expires_at, lots.c.id).limit(bindparam("limit")))
# ix_lots_member_expiry (member_id, expires_at): the member's lots of one expiry day.
_DAY_POINTS = (select(func.coalesce(func.sum(lots.c.remaining), 0))
               .where(lots.c.member_id == bindparam("member_id"),
                      lots.c.expires_at >= bindparam("start", type_=lots.c.expires_at.type),
                      lots.c.expires_at < bindparam("end", type_=lots.c.expires_at.type),
                      lots.c.remaining > 0))


def expiring(engine: Engine, clock: Clock, days: int, *, batch: int = BATCH,
             progress: Progress | None = None) -> JobRun:
    """Notify the points expiring within ``days`` (30 or 7) not yet told for that window."""
    if days not in WINDOWS:
        raise InvalidInput(f"days must be one of {sorted(WINDOWS)}", field="days")
    if batch < 1:
        raise InvalidInput("batch must be at least 1", field="batch")
    job, kind = f"expiring:{days}", WINDOWS[days]
    scanned = notified = 0
    while True:
        with UnitOfWork(engine) as uow:
            conn, now = uow.conn, clock.now()
            row = conn.execute(select(notification_jobs.c.cursor_at, notification_jobs.c.cursor_id)
                               .where(notification_jobs.c.job == job)).first()
            # Lots that expired since the last run are past telling: start at now at least.
            at, lot_id = ((now, 0) if row is None or row.cursor_at < now
                          else (row.cursor_at, int(row.cursor_id)))
            until = now + timedelta(days=days)
            found = conn.execute(_LOTS, {"at": at, "id": lot_id, "until": until,
                                         "limit": batch}).all()
            if not found:
                return JobRun(scanned, notified)
            told: set[tuple[str, date]] = set()
            nearer = now + timedelta(days=7) if days > 7 else None
            for lot in found:
                day = lot.expires_at.astimezone(UTC).date()
                if lot.remaining <= 0 or (lot.member_id, day) in told:
                    continue
                if nearer is not None and lot.expires_at <= nearer:
                    continue  # the 7-day notice tells this day
                told.add((lot.member_id, day))
                start = datetime.combine(day, time(), tzinfo=UTC)
                points = int(conn.execute(_DAY_POINTS, {
                    "member_id": lot.member_id, "start": start,
                    "end": start + timedelta(days=1)}).scalar_one())
                if points > 0 and notify(conn, now, expiring_draft(
                        lot.member_id, kind, days, day, points)):
                    notified += 1
            last = found[-1]
            _save_cursor(conn, job, last.expires_at, int(last.id), now)
            uow.commit()
        scanned += len(found)
        if progress:
            progress(scanned, notified)


def expiring_draft(member_id: str, kind: Kind, days: int, day: date, points: int) -> Draft:
    return Draft(member_id, kind, f"expiring:{days}:{day.isoformat()}",
                 f"{points} points expire on {day.isoformat()}",
                 f"{points} of your points expire on {day.isoformat()} (UTC). Spend them at any "
                 "brand of the coalition before then.",
                 {"points": points, "expires_on": day.isoformat(), "window_days": days})


def _save_cursor(conn: Connection, job: str, at: datetime, lot_id: int, now: datetime) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(notification_jobs).values(job=job, cursor_at=at, cursor_id=lot_id,
                                                        updated_at=now)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["job"], set_={"cursor_at": statement.excluded.cursor_at,
                                      "cursor_id": statement.excluded.cursor_id,
                                      "updated_at": statement.excluded.updated_at}))


# --- birthdays --------------------------------------------------------------------------------
# Primary key from the cursor: ``limit`` members a statement.
_MEMBERS = (select(members.c.id, members.c.birth_date)
            .where(members.c.id > bindparam("after"), members.c.status == "active")
            .order_by(members.c.id).limit(bindparam("limit")))


def is_birthday(born: date, today: date) -> bool:
    if (born.month, born.day) == (today.month, today.day):
        return True
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    return (born.month, born.day) == (2, 29) and not leap and (today.month, today.day) == (2, 28)


def birthdays(engine: Engine, clock: Clock, *, batch: int = BATCH,
              progress: Progress | None = None) -> JobRun:
    """Greet every active member whose birthday is today (UTC), once a year, with consent."""
    if batch < 1:
        raise InvalidInput("batch must be at least 1", field="batch")
    after, scanned, notified = "", 0, 0
    while True:
        with UnitOfWork(engine) as uow:
            conn, now = uow.conn, clock.now()
            today = now.astimezone(UTC).date()
            found = conn.execute(_MEMBERS, {"after": after, "limit": batch}).all()
            if not found:
                return JobRun(scanned, notified)
            for member_id, born in found:
                if born is not None and is_birthday(born, today) and notify(
                        conn, now, birthday_draft(str(member_id), today)):
                    notified += 1
            uow.commit()
        after = str(found[-1].id)
        scanned += len(found)
        if progress:
            progress(scanned, notified)


def birthday_draft(member_id: str, today: date) -> Draft:
    return Draft(member_id, Kind.BIRTHDAY, f"birthday:{today.year}", "Happy birthday!",
                 "Happy birthday from all the brands of the coalition. Birthday-month offers "
                 "apply to your purchases this month where a brand runs one.",
                 {"year": today.year})
