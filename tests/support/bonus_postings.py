"""Bonus postings as decision 020 lays them out, written through the ledger's real apply path
(``gateway.ledger.apply``), until the campaign engine posts them from ``earn_points`` itself.

An award is an operation at the earning partner, rated with that partner's rule version, that
moves points FROM the funder's account (``partner:<id>:promotions``, or ``coalition:bonus``) TO
the member's wallet and creates a lot with the earning partner as origin. A reversal is a
``return`` whose parent is the award (priced at the award's rule version, like any return): it
moves what the wallet still holds of the share back to the funder's account, taking it out of
the member's lots. Real database, real rows; nothing here bypasses a check the ledger makes."""

from __future__ import annotations

from datetime import timedelta

from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext
from gateway.ledger.housekeeping import sweep_member
from gateway.ledger.load import member_state, spendable_lots
from gateway.ledger.lot_repository import LotRepository
from gateway.ledger.model import OperationRecord
from gateway.ledger.planners import Move, NewLot, Posting, take_lots
from gateway.ledger.repository import Account
from gateway.ledger.runner import Tx, operation_id, transact
from gateway.promotions import funding
from gateway.settlement.model import COALITION


def funder_account(tx: Tx, funder: str) -> Account:
    if funder == COALITION:
        return tx.ledger.coalition_account(AccountKind.BONUS)
    return tx.ledger.partner_account(funder, AccountKind.PROMOTIONS)


def post_bonus(ctx: LedgerContext, partner: str, member_id: str, funder: str, points: int,
               key: str, *, charge: bool = False) -> str:
    """Award ``points`` funded by ``funder`` at ``partner`` now; the award's operation id.
    ``charge``: count them against the funder's funding in the same transaction, where the
    earn will call ``funding.charge`` (a refusal rolls the whole posting back)."""
    op = operation_id()

    def body(conn: object) -> str:
        tx = Tx.on(conn, ctx.clock.now())  # type: ignore[arg-type]
        tx.ledger.lock_member(member_id)
        sweep_member(tx, member_id)
        if charge:
            funding.charge(tx.conn, funder, points, tx.now)
        rule = ctx.rules.rule_at(partner, tx.now)
        expiry_days = rule.earn.expiry_days if rule.earn else 365
        wallet = member_state(tx, member_id).account(AccountKind.WALLET)
        record = OperationRecord(
            id=op, partner_id=partner, member_id=member_id, kind="earn", points=points,
            result={"bonus": points, "funder": funder}, key=key, fingerprint=key[:64],
            rule=rule, channel="store")
        lot = NewLot(partner, points, tx.now, tx.now + timedelta(days=expiry_days), tx.now)
        apply(tx, (Posting(record, (Move(funder_account(tx, funder), wallet, points),),
                           new_lots=(lot,)),))
        return op

    return transact(ctx.engine, body)  # type: ignore[arg-type]


def return_bonus(ctx: LedgerContext, partner: str, member_id: str, award: str, funder: str,
                 points: int, key: str, *, release: bool = False) -> int:
    """Reverse up to ``points`` of ``award`` (what the wallet holds); the points reversed.
    ``release``: give them back to the funder's funding in the same transaction."""
    op = operation_id()

    def body(conn: object) -> int:
        tx = Tx.on(conn, ctx.clock.now())  # type: ignore[arg-type]
        tx.ledger.lock_member(member_id)
        sweep_member(tx, member_id)
        state = member_state(tx, member_id)
        taken = min(points, state.available)
        if taken <= 0:
            return 0
        own, _ = LotRepository(tx.conn).earn_lots(award)
        takes = take_lots(spendable_lots(tx, member_id), taken, tx.now, prefer=own)
        record = OperationRecord(
            id=op, partner_id=partner, member_id=member_id, kind="return", points=-taken,
            result={"bonus_reversed": taken}, key=key, fingerprint=key[:64], parent_id=award)
        apply(tx, (Posting(record, (Move(state.account(AccountKind.WALLET),
                                         funder_account(tx, funder), taken),),
                           lot_moves=takes),))
        if release:
            funding.release(tx.conn, funder, taken, tx.now)
        return taken

    return transact(ctx.engine, body)  # type: ignore[arg-type]
