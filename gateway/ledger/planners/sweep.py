"""Housekeeping's planner: release pending, release lapsed holds, expire."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.ledger.chart import AccountKind
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import OperationRecord
from gateway.ledger.planners.lots import apply_takes, take_lots
from gateway.ledger.planners.state import HoldState, MemberState, Move, OpenLot, Posting
from gateway.ledger.repository import Account


@dataclass(frozen=True, slots=True)
class SweepState:
    """What housekeeping needs of one member: accounts and balances, every lot with points left
    (and the lots lapsed holds took from), the member's authorised holds past their expiry."""

    member: MemberState
    lots: tuple[OpenLot, ...]
    lapsed_holds: tuple[HoldState, ...]


def plan_sweep(state: SweepState, now: datetime, breakage: Account,
               new_operation_id: Iterable[str]) -> tuple[Posting, ...]:
    """Housekeeping as postings, in the order a member's next write applies them: pending
    points past their return window move to the wallet (repaying debt first from those not
    already expired), lapsed holds go back to the wallet and their lots, and every lot past its
    expiry (those just released or restored too) becomes breakage, one operation per origin
    partner. ``new_operation_id`` yields the ids for the operations written."""
    ids = iter(new_operation_id)
    member = state.member
    wallet = member.account(AccountKind.WALLET)
    lots = {lot.id: lot for lot in state.lots}
    postings: list[Posting] = []

    matured = sorted((lot for lot in lots.values()
                      if lot.pending and lot.available_at is not None
                      and lot.available_at <= now), key=lambda lot: lot.id)
    if matured:
        by_origin: dict[str, int] = defaultdict(int)
        spendable = 0  # released points not already past their expiry: only these repay debt
        for lot in matured:
            by_origin[lot.origin_partner_id] += lot.remaining
            spendable += 0 if lot.expires_at <= now else lot.remaining
            lots[lot.id] = replace(lot, pending=False)
        releases: list[Posting] = []
        for origin, points in sorted(by_origin.items()):
            if points == 0:  # fully returned while pending: nothing left to release
                continue
            record = OperationRecord(id=next(ids), partner_id=origin,
                                     member_id=member.member_id, kind="release",
                                     points=points, result={"released": points})
            releases.append(Posting(record, (Move(member.account(AccountKind.PENDING), wallet,
                                                  points),)))
        released_ids = tuple(lot.id for lot in matured)
        if not releases:  # nothing to post, but the lots leave pending all the same
            postings.append(Posting(None, released_lots=released_ids))
        else:
            releases[0] = replace(releases[0], released_lots=released_ids)
        repay = min(member.debt, spendable)
        if repay and releases:
            takes = take_lots(lots.values(), repay, now)
            apply_takes(lots, takes)
            last = releases[-1]
            repaid = Move(wallet, member.account(AccountKind.DEBT), repay)
            releases[-1] = replace(last, moves=(*last.moves, repaid),
                                   lot_moves=last.lot_moves + takes)
        postings.extend(releases)

    for hold in sorted(state.lapsed_holds, key=lambda h: h.id):
        restores = tuple(LotTake(t.lot_id, t.origin_partner_id, -t.points) for t in hold.takes)
        apply_takes(lots, restores)
        record = OperationRecord(id=next(ids), partner_id=hold.partner_id,
                                 member_id=member.member_id, kind="hold_expired",
                                 points=hold.points, result={"released": hold.points},
                                 hold_id=hold.id, parent_id=hold.operation_id)
        postings.append(Posting(record, (Move(member.account(AccountKind.HELD), wallet,
                                              hold.points),),
                                lot_moves=restores, settle_hold=(hold.id, "expired", 0)))

    expired: dict[str, list[LotTake]] = defaultdict(list)
    for lot in sorted(lots.values(), key=lambda lot: lot.id):
        if lot.remaining > 0 and not lot.pending and lot.expires_at <= now:
            expired[lot.origin_partner_id].append(
                LotTake(lot.id, lot.origin_partner_id, -lot.remaining))
    for origin, lot_takes in sorted(expired.items()):
        points = -sum(t.points for t in lot_takes)
        record = OperationRecord(id=next(ids), partner_id=origin, member_id=member.member_id,
                                 kind="expire", points=-points, result={"expired": points})
        postings.append(Posting(record, (Move(wallet, breakage, points),),
                                lot_moves=tuple(lot_takes)))
    return tuple(postings)


def swept(member: MemberState, postings: Iterable[Posting]) -> MemberState:
    """The member's balances once ``postings`` are applied (what a read shows, and what a
    command that swept first goes on from)."""
    balances = dict(member.balances)
    by_id = {account.id: kind for kind, account in member.accounts.items()}
    for posting in postings:
        for move in posting.moves:
            if move.debit.id in by_id:
                balances[by_id[move.debit.id]] -= move.amount
            if move.credit.id in by_id:
                balances[by_id[move.credit.id]] += move.amount
    return MemberState(member.member_id, member.accounts, balances)


def records_operation(posting: Posting) -> bool:
    return posting.record is not None
