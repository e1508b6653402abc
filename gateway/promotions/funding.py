"""Funders' funding accounts: who may issue how many bonus points, kept in the issuing transaction.

A funder (a partner id, or ``coalition``) may have one row in ``funders`` (no row: unlimited, the
behaviour before issue 12). Everything is in **points**, the unit a funder issues in (decision
023-funding; docs/funding.md): the money a point costs depends on the rule version of
each earn, so finance sees money as a valuation (gateway.settlement.exposure), never as the
limit itself.

* ``limit_points``: a credit line (mode ``credit``); 0 for a prepaid funder.
* ``funded_points``: top-ups (prepaid) or repayments recorded by finance (credit), summed.
* ``issued_points`` / ``reversed_points``: what ``charge`` and ``release`` counted.
* headroom ``left = limit + funded - (issued - reversed)``; exposure
  ``max(0, issued - reversed - funded)``: points issued, net of reversals, that no money
  received covers yet.

``charge`` is one conditional UPDATE on the funder's row (it takes the row lock until the
transaction ends, so concurrent charges against one funder queue and never overshoot); policy
``refuse`` raises :class:`FundingLimitReached`, policy ``alert`` lets the charge through, appends
an ``alert`` event and counts a warning metric. ``release`` gives points back on a reversal.
Every change of terms and every top-up is a ``funding_events`` row (append-only) with its actor.
Nothing here commits."""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, insert, literal_column, select, update

from gateway.core.errors import FundingLimitReached, InvalidInput, NotFound
from gateway.db.tables import funders, funding_events, partners

COALITION = "coalition"
MAX_POINTS = 10**15  # far above any real limit; keeps sums inside BIGINT
log = logging.getLogger("gateway.funding")


class FundingMode(enum.StrEnum):
    PREPAID = "prepaid"
    CREDIT = "credit"


class FundingPolicy(enum.StrEnum):
    REFUSE = "refuse"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class Funding:
    """One funder's row as read."""

    funder: str
    mode: FundingMode
    policy: FundingPolicy
    limit_points: int
    funded_points: int
    issued_points: int
    reversed_points: int
    alerts: int
    updated_at: datetime

    @property
    def net_issued_points(self) -> int:
        return self.issued_points - self.reversed_points

    @property
    def left_points(self) -> int:
        """Headroom: what a charge may still take (negative: overshot, alert policy)."""
        return self.limit_points + self.funded_points - self.net_issued_points

    @property
    def exposure_points(self) -> int:
        """Issued net of reversals and not covered by money received."""
        return max(0, self.net_issued_points - self.funded_points)


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    """What ``charge`` did: ``limited`` False when the funder has no row (unlimited);
    ``alerted`` True when an alert-policy funder went past its headroom."""

    funder: str
    points: int
    limited: bool
    left_points: int | None = None
    alerted: bool = False


# --- the hot path: one statement per charge -------------------------------------------------------
_HEADROOM = (funders.c.limit_points + funders.c.funded_points - funders.c.issued_points
             + funders.c.reversed_points)
_FITS = (funders.c.policy == literal_column("'alert'")) | (bindparam("p") <= _HEADROOM)
# Matches the funder's row whether or not the charge fits (SET reads the old values): a refusal
# counts nothing and says so in ``last_charge`` (negative), so no second statement is needed
# to tell "no terms" (no row) from "refused" (decision 023).
_CHARGE = (
    update(funders)
    .where(funders.c.funder == bindparam("f"))
    .values(issued_points=funders.c.issued_points + case((_FITS, bindparam("p")), else_=0),
            updated_at=case((_FITS, bindparam("at")), else_=funders.c.updated_at),
            last_charge=case((_FITS, bindparam("p")), else_=-bindparam("p")))
    .returning(funders.c.policy, _HEADROOM, funders.c.last_charge)
)
# Never more reversed than issued: points awarded before the funder's account was opened were
# never charged, so their return must not add headroom.
_RELEASED = funders.c.reversed_points + bindparam("p")
_RELEASE = (
    update(funders).where(funders.c.funder == bindparam("f"))
    .values(reversed_points=case((funders.c.issued_points < _RELEASED, funders.c.issued_points),
                                 else_=_RELEASED),
            updated_at=bindparam("at"))
)
# Taking back part of a charge made earlier in the same transaction (the write path's second
# evaluation gave that funder less): the row is locked by that charge already.
_UNCHARGE = (update(funders).where(funders.c.funder == bindparam("f"))
             .values(issued_points=funders.c.issued_points - bindparam("p")))
_ALERTED = (update(funders).where(funders.c.funder == bindparam("f"))
            .values(alerts=funders.c.alerts + 1))
_READ = select(funders).where(funders.c.funder == bindparam("f"))
_EVENT = insert(funding_events)


def charge(conn: Connection, funder: str, points: int, at: datetime) -> ChargeOutcome:
    """Count ``points`` issued by ``funder`` in this transaction (call it where the award is
    posted, in the earn's transaction). Raises FUNDING_LIMIT_REACHED (nothing counted; the
    caller's transaction rolls back) when a ``refuse`` funder lacks the headroom."""
    _check_points(points, "points")
    if points == 0:
        return ChargeOutcome(funder, 0, limited=False)
    row = conn.execute(_CHARGE, {"f": funder, "p": points, "at": at}).first()
    if row is None:  # no terms: unlimited, nothing counted (no hot row for such a funder)
        return ChargeOutcome(funder, points, limited=False)
    left = int(row[1])
    if int(row[2]) < 0:  # refused: nothing counted; the row stays locked to the transaction
        raise FundingLimitReached(funder, points, left)
    if left >= 0:
        return ChargeOutcome(funder, points, limited=True, left_points=left)
    # Alert policy, past its headroom: allowed, recorded, counted.
    conn.execute(_ALERTED, {"f": funder})
    conn.execute(_EVENT, _event(funder, at, "system", "alert", points,
                                {"left_points": left}))
    log.warning("funder %s issued %d points past its funding (left %d)", funder, points, left,
                extra={"metric": "funding_alert", "funder": funder})
    return ChargeOutcome(funder, points, limited=True, left_points=left, alerted=True)


def release(conn: Connection, funder: str, points: int, at: datetime) -> None:
    """Give back ``points`` a reversal returned to ``funder`` (no row: nothing to count)."""
    _check_points(points, "points")
    if points:
        conn.execute(_RELEASE, {"f": funder, "p": points, "at": at})


def uncharge(conn: Connection, funder: str, points: int) -> None:
    """Take back ``points`` of a charge made earlier in this transaction (never a reversal:
    a return is ``release``). The write path's funding step needs it when a second evaluation
    gives a funder fewer points than it was charged for (gateway.ledger.promotions)."""
    _check_points(points, "points")
    if points:
        conn.execute(_UNCHARGE, {"f": funder, "p": points})


def headroom_locked(conn: Connection, funder: str) -> int | None:
    """The funder's headroom with its row locked until the transaction ends (None: no row,
    unlimited): read after a refused charge, whose UPDATE matched nothing and locked nothing,
    so the award cut to it cannot be overtaken by a concurrent charge."""
    found = _locked(conn, funder)
    return None if found is None else found.left_points


def charge_all(conn: Connection, points_by_funder: Mapping[str, int],
               at: datetime) -> tuple[ChargeOutcome, ...]:
    """``charge`` each funder of one operation, in funder order (the lock order: two earns that
    charge the same two funders lock them in the same order, so they queue, never deadlock).
    The first refusal raises; the caller's transaction rolls the others back."""
    return tuple(charge(conn, funder, points, at)
                 for funder, points in sorted(points_by_funder.items()) if points)


def release_all(conn: Connection, points_by_funder: Mapping[str, int], at: datetime) -> None:
    """``release`` each funder of one reversal, in funder order."""
    for funder, points in sorted(points_by_funder.items()):
        release(conn, funder, points, at)


# --- finance: read and change the terms -----------------------------------------------------------
def read(conn: Connection, funder: str) -> Funding | None:
    row = conn.execute(_READ, {"f": funder}).first()
    return None if row is None else _funding(row)


def all_funders(conn: Connection) -> list[Funding]:
    return [_funding(r) for r in conn.execute(select(funders).order_by(funders.c.funder))]


def configure(conn: Connection, funder: str, *, mode: FundingMode | None,
              policy: FundingPolicy | None, limit_points: int | None, at: datetime,
              actor: str) -> Funding:
    """Create the funder's row or change its terms (mode, policy, credit limit); each change
    is an event. A new row needs a mode; a prepaid funder has no credit limit."""
    _check_funder(conn, funder)
    if limit_points is not None:
        _check_points(limit_points, "limit")
    current = _locked(conn, funder)
    if current is None:
        if mode is None:
            raise InvalidInput(f"funder {funder!r} has no funding account yet; give its mode "
                               "(prepaid or credit)", field="mode")
        limit = limit_points or 0
        _check_terms(mode, limit)
        conn.execute(insert(funders), {
            "funder": funder, "mode": mode, "policy": policy or FundingPolicy.REFUSE,
            "limit_points": limit, "funded_points": 0, "issued_points": 0,
            "reversed_points": 0, "alerts": 0, "updated_at": at})
        conn.execute(_EVENT, _event(funder, at, actor, "opened", 0, {
            "mode": str(mode), "policy": str(policy or FundingPolicy.REFUSE),
            "limit_points": limit}))
        found = read(conn, funder)
        assert found is not None
        return found
    new_mode = mode or current.mode
    new_limit = current.limit_points if limit_points is None else limit_points
    if new_mode is FundingMode.PREPAID and limit_points is None:
        new_limit = 0
    new_policy = policy or current.policy
    _check_terms(new_mode, new_limit)
    changes = {k: v for k, v in (("mode", str(new_mode)), ("policy", str(new_policy)),
                                 ("limit_points", new_limit))
               if v != {"mode": str(current.mode), "policy": str(current.policy),
                        "limit_points": current.limit_points}[k]}
    if changes:
        conn.execute(update(funders).where(funders.c.funder == funder).values(
            mode=new_mode, policy=new_policy, limit_points=new_limit, updated_at=at))
        conn.execute(_EVENT, _event(funder, at, actor, "terms", 0, changes))
    found = read(conn, funder)
    assert found is not None
    return found


def top_up(conn: Connection, funder: str, points: int, at: datetime, actor: str,
           note: str | None = None) -> Funding:
    """Record money received from ``funder`` as points of headroom (prepaid: a top-up;
    credit: a repayment), an event with its actor."""
    _check_points(points, "points")
    if points == 0:
        raise InvalidInput("a top-up is a positive number of points", field="points")
    if _locked(conn, funder) is None:
        raise NotFound(f"funder {funder!r} has no funding account; create it with "
                       "`gateway funding set`", field="funder")
    conn.execute(update(funders).where(funders.c.funder == funder).values(
        funded_points=funders.c.funded_points + points, updated_at=at))
    conn.execute(_EVENT, _event(funder, at, actor, "topup", points,
                                {"note": note} if note else {}))
    found = read(conn, funder)
    assert found is not None
    return found


def events(conn: Connection, funder: str, limit: int = 100) -> list[dict[str, object]]:
    e = funding_events.c
    rows = conn.execute(select(e.at, e.actor, e.kind, e.points, e.detail)
                        .where(e.funder == funder).order_by(e.id.desc()).limit(limit))
    return [{"at": r.at, "actor": r.actor, "kind": r.kind, "points": int(r.points),
             "detail": json.loads(r.detail)} for r in rows]


# --- helpers --------------------------------------------------------------------------------------
def _locked(conn: Connection, funder: str) -> Funding | None:
    stmt = select(funders).where(funders.c.funder == funder)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else _funding(row)


def _funding(r: Any) -> Funding:
    """A row as read (by attribute: a SQLAlchemy row or the raw driver's row)."""
    return Funding(str(r.funder), FundingMode(r.mode), FundingPolicy(r.policy),
                   int(r.limit_points), int(r.funded_points), int(r.issued_points),
                   int(r.reversed_points), int(r.alerts), r.updated_at)


def _event(funder: str, at: datetime, actor: str, kind: str, points: int,
           detail: Mapping[str, object]) -> dict[str, object]:
    return {"funder": funder, "at": at, "actor": actor, "kind": kind, "points": points,
            "detail": json.dumps(detail, sort_keys=True, separators=(",", ":"))}


def _check_points(points: int, field: str) -> None:
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= MAX_POINTS:
        raise InvalidInput(f"{field} must be a whole number of points from 0 to {MAX_POINTS}",
                           field=field)


def _check_funder(conn: Connection, funder: str) -> None:
    if funder == COALITION:
        return
    if conn.execute(select(partners.c.id).where(partners.c.id == funder)).first() is None:
        raise NotFound(f"no partner {funder!r}; a funder is a partner id or 'coalition'",
                       field="funder")


def _check_terms(mode: FundingMode, limit: int) -> None:
    if mode is FundingMode.PREPAID and limit:
        raise InvalidInput("a prepaid funder has no credit limit; top it up instead",
                           field="limit")
