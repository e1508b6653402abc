"""The load step of load -> plan -> apply: the small state a planner needs, read in a few
indexed statements on the command's open transaction (each starts from the member id or the
hold id, so its cost is the member's own data, never the size of the tables)."""

from __future__ import annotations

from collections.abc import Sequence
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
    return sweep_states_of(tx, [member], at)[member.member_id]


def sweep_states_of(tx: Tx, members: Sequence[MemberState], at: datetime
                    ) -> dict[str, SweepState]:
    """:func:`sweep_state_of` for many members in the same few statements as for one: their
    lots with points left, their lapsed holds with the lots those took from (even emptied
    since)."""
    if not members:
        return {}
    ids = [member.member_id for member in members]
    repo = LotRepository(tx.conn)
    live = repo.live_lots(ids)
    lapsed = HoldRepository(tx.conn).lapsed(ids, at)
    lots = {member_id: {row[0]: _lot(row) for row in live.get(member_id, ())}
            for member_id in ids}
    missing = sorted({t.lot_id for hold in lapsed for t in hold.takes}
                     - {lot_id for own in lots.values() for lot_id in own})
    owner = {t.lot_id: hold.member_id for hold in lapsed for t in hold.takes}
    for row in repo.lots_by_id(missing):  # a hold takes from its own member's lots
        lots[owner[row[0]]][row[0]] = _lot(row)
    return {member.member_id: SweepState(
        member, tuple(lots[member.member_id].values()),
        tuple(h for h in lapsed if h.member_id == member.member_id)) for member in members}


def _lot(row: tuple[int, str, int, datetime, bool, datetime]) -> OpenLot:
    lot_id, origin, remaining, expires_at, pending, available_at = row
    return OpenLot(lot_id, origin, remaining, expires_at, pending, available_at)
