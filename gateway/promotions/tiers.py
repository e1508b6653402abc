"""Coalition tiers: the programme, a member's qualifying points, and the tier they give
(issue 12, docs/decisions/026-tiers-and-segments.md).

Qualifying points are the **base** points of a member's earns at every brand (what the
partners' conversion rules gave; campaign bonus points, tier multipliers included, never
qualify), kept per calendar month (UTC) in ``tier_progress``: the earn adds its base points to
the month of its ``occurred_at`` in its own transaction (:func:`record_qualifying`), a return
takes back the base points it reverses from the same month. A member's tier at a time is the
highest tier whose threshold the sum of the last ``window_months`` months (the current one
included) reaches: at most twelve rows read through the primary key, whatever the member's
history (:func:`qualifying_months`).

Downgrade policy: none held over. The tier is evaluated on the rolling window at every read,
so it falls as soon as the window no longer reaches the threshold: at the start of a month
when old points leave the window, or at once when a return takes points back. ``valid_until``
says when that happens if the member earns nothing more."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction

from sqlalchemy import Connection, Engine, bindparam, select, text

from gateway.db.tables import operations, tier_progress
from gateway.db.uow import UnitOfWork

COALITION_FUNDED = "coalition"
PARTNER_FUNDED = "partner"


@dataclass(frozen=True, slots=True)
class Tier:
    id: str  # what a campaign's audience names (``TierIn``): ``gold``
    name: str  # what a member reads: ``Gold``
    threshold: int  # qualifying points over the window to hold it


@dataclass(frozen=True, slots=True)
class PartnerTerms:
    """What a tier gives at one partner: an earn multiplier and a discount percentage per
    tier (either may be absent), and who pays the multipliers' bonus points."""

    partner_id: str
    funder: str  # COALITION_FUNDED or PARTNER_FUNDED
    multipliers: Mapping[str, Fraction] = field(default_factory=dict)
    discount_percent: Mapping[str, Fraction] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TierProgramme:
    """One version of the coalition's tier programme (partners/catalog/coalition/tiers.toml).
    ``tiers`` ascend by threshold; the first one's threshold is 0 (every member holds it)."""

    version: int
    effective_from: datetime  # UTC: the sync's campaigns are in force from then
    tiers: tuple[Tier, ...]
    partners: Mapping[str, PartnerTerms]
    window_months: int = 12

    def tier_for(self, points: int) -> Tier:
        found = self.tiers[0]
        for tier in self.tiers:
            if points >= tier.threshold:
                found = tier
        return found

    def next_after(self, tier: Tier) -> Tier | None:
        index = self.tiers.index(tier)
        return self.tiers[index + 1] if index + 1 < len(self.tiers) else None


@dataclass(frozen=True, slots=True)
class TierStatus:
    """A member's tier at ``at``: what the wallet and the partner's member view show."""

    tier: Tier
    qualifying_points: int
    next_tier: Tier | None
    points_to_next: int | None
    valid_until: datetime | None  # when it falls if nothing more is earned; None: never


# --- months ---------------------------------------------------------------------------------------
def month_of(at: datetime) -> int:
    """The UTC calendar month of ``at`` as ``YYYYMM`` (what ``tier_progress.month`` holds)."""
    at = at.astimezone(UTC)
    return at.year * 100 + at.month


def add_months(month: int, delta: int) -> int:
    index = (month // 100) * 12 + (month % 100 - 1) + delta
    return (index // 12) * 100 + index % 12 + 1


def month_start(month: int) -> datetime:
    return datetime(month // 100, month % 100, 1, tzinfo=UTC)


def window(at: datetime, months: int) -> tuple[int, int]:
    """The first and last month of the window ending with ``at``'s month (inclusive)."""
    last = month_of(at)
    return add_months(last, -(months - 1)), last


# --- storage: built once (DESIGN §11) ---------------------------------------------------------
# One row per (member, month), primary key (member_id, month): the upsert touches one row of the
# member's own (the member is locked by the earn or return already, so no two commands race).
_UPSERT = text(
    "INSERT INTO tier_progress (member_id, month, points) VALUES (:member_id, :month, :points) "
    "ON CONFLICT (member_id, month) DO UPDATE SET points = tier_progress.points + excluded.points")
# At most ``window_months`` rows: a range of the primary key (member_id, month).
_MONTHS = (
    select(tier_progress.c.month, tier_progress.c.points)
    .where(tier_progress.c.member_id == bindparam("member_id"),
           tier_progress.c.month >= bindparam("first"),
           tier_progress.c.month <= bindparam("last"))
    .order_by(tier_progress.c.month))


_EARN_OCCURRED = select(operations.c.occurred_at).where(operations.c.id == bindparam("id"))


def record_qualifying(conn: Connection, member_id: str, occurred_at: datetime,
                      points: int) -> None:
    """Add ``points`` (negative: a return) to the member's month of ``occurred_at``."""
    if points:
        conn.execute(_UPSERT, {"member_id": member_id, "month": month_of(occurred_at),
                               "points": points})


_ABSORBED_MONTHS = select(tier_progress.c.month, tier_progress.c.points).where(
    tier_progress.c.member_id == bindparam("member_id"), tier_progress.c.points != 0)


def move_progress(conn: Connection, survivor_id: str, absorbed_id: str) -> int:
    """A merge: the absorbed member's qualifying points join the survivor's, month by month
    (both members locked by the merge), so the survivor's tier counts every purchase of the
    person; the absorbed member's months are zeroed (it has no tier of its own any more).
    At most one row per month of the absorbed member's history (primary key range). Returns
    the points moved."""
    rows = conn.execute(_ABSORBED_MONTHS, {"member_id": absorbed_id}).all()
    for month, points in rows:
        conn.execute(_UPSERT, {"member_id": survivor_id, "month": int(month),
                               "points": int(points)})
        conn.execute(_UPSERT, {"member_id": absorbed_id, "month": int(month),
                               "points": -int(points)})
    return sum(int(points) for _, points in rows)


def record_returned(conn: Connection, member_id: str, earn_id: str, points: int) -> None:
    """Take ``points`` reversed by a return off the month of the earn's ``occurred_at`` (the
    earn's row, read by primary key)."""
    if points:
        occurred_at = conn.execute(_EARN_OCCURRED, {"id": earn_id}).scalar_one()
        record_qualifying(conn, member_id, occurred_at, -points)


def qualifying_months(conn: Connection, member_id: str, at: datetime,
                      months: int) -> dict[int, int]:
    """The member's qualifying points per month over the window ending with ``at``'s month."""
    first, last = window(at, months)
    rows = conn.execute(_MONTHS, {"member_id": member_id, "first": first, "last": last}).all()
    return {int(month): int(points) for month, points in rows}


def tier_at(conn: Connection, programme: TierProgramme, member_id: str, at: datetime) -> Tier:
    """The member's tier at ``at`` (the earn's load step: ``MemberFacts.tier``)."""
    return programme.tier_for(sum(qualifying_months(conn, member_id, at,
                                                    programme.window_months).values()))


def status_at(conn: Connection, programme: TierProgramme, member_id: str,
              at: datetime) -> TierStatus:
    return status(programme, qualifying_months(conn, member_id, at, programme.window_months),
                  at)


def member_status(engine: Engine, programme: TierProgramme | None, member_id: str,
                  at: datetime) -> TierStatus | None:
    """The member's tier at ``at`` in its own read transaction; None with no programme."""
    if programme is None:
        return None
    with UnitOfWork(engine, write=False) as uow:
        return status_at(uow.conn, programme, member_id, at)


def status(programme: TierProgramme, months: Mapping[int, int], at: datetime) -> TierStatus:
    """The tier the months give at ``at``, what the next needs, and until when it holds: the
    start of the first later month whose window, with nothing more earned, falls below the
    tier's threshold (the oldest months leave the window one by one). Pure: O(window)."""
    first, last = window(at, programme.window_months)
    total = sum(points for month, points in months.items() if first <= month <= last)
    tier = programme.tier_for(total)
    following = programme.next_after(tier)
    valid_until = None
    if tier.threshold > 0:
        remaining = total
        for k in range(programme.window_months):
            remaining -= months.get(add_months(first, k), 0)
            if remaining < tier.threshold:
                valid_until = month_start(add_months(last, k + 1))
                break
    return TierStatus(tier, total, following,
                      None if following is None else following.threshold - total, valid_until)


def by_id(tiers: Sequence[Tier]) -> dict[str, Tier]:
    return {t.id: t for t in tiers}
