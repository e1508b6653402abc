"""The apply step of load -> plan -> apply: write what a planner decided, in one transaction,
in the order the database's checks need (the operation before its transfers, a hold after its
operation, a lot before the movements that use it). No rule is decided here."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.ledger.hold_repository import HoldRepository
from gateway.ledger.lot_repository import LotRepository, LotTake
from gateway.ledger.planners import Posting
from gateway.ledger.runner import Tx, record_operation
from gateway.promotions.repository import add_to_counters, insert_awards


def apply(tx: Tx, postings: Iterable[Posting]) -> None:
    lots = LotRepository(tx.conn)
    for posting in postings:
        record = posting.record
        if record is not None:
            record_operation(tx, record)
        if posting.released_lots:
            lots.release_lots(posting.released_lots)
        if record is None:  # pending lots released, no operation: nothing else to write
            continue
        op = record.id
        if posting.new_hold is not None:
            HoldRepository(tx.conn).insert(posting.new_hold, op, tx.now)
        tx.ledger.post_all(op, [(m.debit, m.credit, m.amount) for m in posting.moves], tx.now)
        for lot in posting.new_lots:
            if not lot.taken:  # no id needed: no round trip of its own on PostgreSQL
                lots.add_lot(
                    member_id=str(record.member_id),
                    origin_partner_id=lot.origin_partner_id, operation_id=op,
                    points=lot.points, earned_at=lot.earned_at, expires_at=lot.expires_at,
                    available_at=lot.available_at)
                continue
            lot_id = lots.create_lot(
                member_id=str(record.member_id), origin_partner_id=lot.origin_partner_id,
                operation_id=op, points=lot.points, earned_at=lot.earned_at,
                expires_at=lot.expires_at, available_at=lot.available_at)
            if lot.taken:
                lots.record_lot_movements(
                    [LotTake(lot_id, lot.origin_partner_id, -lot.taken)], op, tx.now)
        if posting.lot_moves:
            lots.record_lot_movements(posting.lot_moves, op, tx.now)
        if posting.settle_hold is not None:
            HoldRepository(tx.conn).settle(*posting.settle_hold)
        if posting.awards:
            insert_awards(tx.conn, op, record.partner_id, posting.awards, tx.now)
        if posting.counters:
            deltas: dict[str, tuple[int, int]] = {}
            for campaign_id, points, rewards in posting.counters:
                before = deltas.get(campaign_id, (0, 0))
                deltas[campaign_id] = (before[0] + points, before[1] + rewards)
            add_to_counters(tx.conn, deltas)
