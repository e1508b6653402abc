"""The load step of load -> plan -> apply: the small state a planner needs, read in a few
indexed statements on the command's open transaction (each starts from the member id or the
hold id, so its cost is the member's own data, never the size of the tables)."""

from __future__ import annotations

from datetime import datetime

from gateway.ledger.hold_repository import HoldRepository
from gateway.ledger.lot_repository import LotRepository
from gateway.ledger.planners import MemberState, OpenLot, SweepState
from gateway.ledger.runner import Tx


def member_state(tx: Tx, member_id: str) -> MemberState:
    """Accounts and balances in one statement."""
    accounts, balances = tx.ledger.member_accounts_and_balances(member_id)
    return MemberState(member_id, accounts, balances)


def spendable_lots(tx: Tx, member_id: str) -> list[OpenLot]:
    return [OpenLot(lot_id, origin, remaining, expires_at)
            for lot_id, origin, remaining, expires_at
            in LotRepository(tx.conn).spendable_lots(member_id, tx.now)]


def sweep_state(tx: Tx, member_id: str, at: datetime) -> SweepState:
    """The member, every lot with points left, the lapsed holds (and the lots they took from,
    even emptied since)."""
    return sweep_state_of(tx, member_state(tx, member_id), at)


def sweep_state_of(tx: Tx, member: MemberState, at: datetime) -> SweepState:
    """:func:`sweep_state` for a member whose accounts are loaded already (a balance read)."""
    repo = LotRepository(tx.conn)
    lots = {row[0]: _lot(row) for row in repo.live_lots(member.member_id)}
    lapsed = HoldRepository(tx.conn).lapsed(member.member_id, at)
    missing = sorted({t.lot_id for hold in lapsed for t in hold.takes} - set(lots))
    for row in repo.lots_by_id(missing):
        lots[row[0]] = _lot(row)
    return SweepState(member, tuple(lots.values()), tuple(lapsed))


def _lot(row: tuple[int, str, int, datetime, bool, datetime]) -> OpenLot:
    lot_id, origin, remaining, expires_at, pending, available_at = row
    return OpenLot(lot_id, origin, remaining, expires_at, pending, available_at)
