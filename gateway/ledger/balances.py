"""Balance reads, beside the rules that write them: a member's balance as their next write
will see it, and the wallet view (pending and expiring points).

A read never writes, so it runs housekeeping's own planner (``plan_sweep``) on the loaded state
and shows its outcome: points past their expiry are not available, pending points past their
return window are (less any debt they repay), lapsed holds are back in the wallet. The rules are
stated once, in :mod:`gateway.ledger.planners`; nothing here restates them.

Every read starts from member ids, through indexes whose leading column is the member id, so
its cost is the members' own data, never the number of members or transfers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import count

from sqlalchemy import Engine, bindparam, func, select, union
from sqlalchemy.sql.elements import BindParameter

from gateway.core.clock import Clock
from gateway.db.tables import accounts, holds, lots
from gateway.db.uow import UnitOfWork
from gateway.ledger.chart import MEMBER_KINDS, AccountKind, coalition_account
from gateway.ledger.load import sweep_states_of
from gateway.ledger.lot_repository import housekeeping_due
from gateway.ledger.model import Balance
from gateway.ledger.planners import MemberState, plan_sweep, swept
from gateway.ledger.repository import Account
from gateway.ledger.runner import Tx

EXPIRING_WINDOW = timedelta(days=30)
EXPIRING_DAYS = 90
# A sweep planned for a read only: its breakage account and operation ids are never written.
_BREAKAGE = Account(0, coalition_account(AccountKind.BREAKAGE), AccountKind.BREAKAGE)


@dataclass(frozen=True, slots=True)
class Wallet:
    balance: Balance
    pending: tuple[tuple[datetime, int], ...]  # (release at, points), soonest first
    expiring: tuple[tuple[date, int], ...]  # (day, points) over the next 90 days


def member_balance(engine: Engine, clock: Clock, member_id: str) -> Balance:
    return member_balances(engine, clock, [member_id])[member_id]


def member_balances(
    engine: Engine, clock: Clock, member_ids: Collection[str]
) -> dict[str, Balance]:
    """Balances of many members: three statements whatever their number (stored balances,
    points expiring soon, who has housekeeping due), then, when any has something due, their
    sweep states together (live lots, lapsed holds and their lot movements, emptied lots those
    took from: at most four more statements, not four per member). Every requested id is in
    the answer; an id with no accounts has zero balances."""
    wanted = sorted(set(member_ids))
    if not wanted:
        return {}
    with UnitOfWork(engine, write=False) as uow:
        now = clock.now()
        before = now + EXPIRING_WINDOW
        params = {"members": wanted, "kinds": [str(k) for k in MEMBER_KINDS], "now": now,
                  "before": before}
        stored = uow.conn.execute(_STORED, params).all()
        expiring = {m: int(total) for m, total in uow.conn.execute(_EXPIRING, params).all()}
        due = set(uow.conn.execute(_DUE, params).scalars())
        found: dict[str, MemberState] = {}
        by_member: dict[str, list[tuple[Account, int]]] = defaultdict(list)
        for member_id, kind, balance, account_id, code in stored:
            by_member[member_id].append((Account(int(account_id), code, AccountKind(kind)),
                                         int(balance)))
        for member_id in wanted:
            rows = by_member.get(member_id, [])
            found[member_id] = MemberState(
                member_id, {a.kind: a for a, _ in rows},
                {kind: dict((a.kind, b) for a, b in rows).get(kind, 0) for kind in MEMBER_KINDS})
        tx = Tx.on(uow.conn, now)
        states = sweep_states_of(tx, [found[m] for m in sorted(due & set(found))], now)
        for member_id, state in states.items():
            ids = (f"read-{n}" for n in count())
            found[member_id] = swept(state.member, plan_sweep(state, now, _BREAKAGE, ids))
    return {member_id: Balance(
        available=state.available, held=state.balances[AccountKind.HELD],
        pending=state.balances[AccountKind.PENDING], debt=state.debt,
        expiring_soon=expiring.get(member_id, 0), expiring_before=before)
        for member_id, state in found.items()}


def wallet(engine: Engine, clock: Clock, member_id: str) -> Wallet:
    """The member's balance, points waiting out a return window, and points expiring per day
    over the next 90 days."""
    balance = member_balance(engine, clock, member_id)
    now = clock.now()
    with UnitOfWork(engine, write=False) as uow:
        pending = uow.conn.execute(
            select(lots.c.available_at, func.sum(lots.c.remaining))
            .where(lots.c.member_id == member_id, lots.c.pending == 1, lots.c.remaining > 0,
                   lots.c.available_at > now)
            .group_by(lots.c.available_at).order_by(lots.c.available_at)).all()
        expiring = uow.conn.execute(
            select(lots.c.expires_at, func.sum(lots.c.remaining))
            .where(lots.c.member_id == member_id, lots.c.remaining > 0,
                   lots.c.expires_at > now,
                   lots.c.expires_at <= now + timedelta(days=EXPIRING_DAYS))
            .group_by(lots.c.expires_at).order_by(lots.c.expires_at)).all()
    by_day: dict[date, int] = defaultdict(int)
    for at, points in expiring:
        by_day[at.date()] += int(points)
    return Wallet(balance, tuple((at, int(p)) for at, p in pending),
                  tuple(sorted(by_day.items())))


# --- read statements, built once ----------------------------------------------------------------
_MEMBERS: BindParameter[str] = bindparam("members", expanding=True)
_NOW = bindparam("now", type_=lots.c.expires_at.type)
_STORED = (select(accounts.c.member_id, accounts.c.kind, accounts.c.balance, accounts.c.id,
                  accounts.c.code)
           .where(accounts.c.member_id.in_(_MEMBERS),
                  accounts.c.kind.in_(bindparam("kinds", expanding=True))))
_EXPIRING = (
    select(lots.c.member_id, func.coalesce(func.sum(lots.c.remaining), 0))
    .where(lots.c.member_id.in_(_MEMBERS), lots.c.expires_at > _NOW,
           lots.c.expires_at <= bindparam("before", type_=lots.c.expires_at.type))
    .group_by(lots.c.member_id))
# Who has housekeeping due (the sweep's conditions): each on the member's own rows.
_LOT_DUE, _HOLD_DUE = housekeeping_due("now")
_DUE = union(
    select(lots.c.member_id).where(lots.c.member_id.in_(_MEMBERS), _LOT_DUE),
    select(holds.c.member_id).where(holds.c.member_id.in_(_MEMBERS), _HOLD_DUE),
)
