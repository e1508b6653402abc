"""Two-step redemption: authorise (points held), then capture (all or part) or void.

A hold moves points wallet → held and consumes lots at once, so held points cannot be spent
twice; capture moves held → the partner's redeemed account and gives back any part not captured;
void gives everything back. A hold past its TTL can no longer be captured; housekeeping (or a
void) releases it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select, update

from gateway.core.errors import (
    CaptureExceedsHold,
    HoldAlreadySettled,
    HoldExpired,
    InvalidAmount,
    NotFound,
)
from gateway.core.ids import new_id
from gateway.core.money import Money
from gateway.db.tables import holds
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext, check_key
from gateway.ledger.model import (
    AuthoriseRedemption,
    CaptureRedemption,
    HoldCaptured,
    HoldPlaced,
    HoldVoided,
    VoidRedemption,
)
from gateway.ledger.precedence import first_failure
from gateway.ledger.repository import LotTake
from gateway.ledger.runner import OperationRecord, Tx, operation_id, record_operation, run_command
from gateway.ledger.service import check_spend, check_spend_request
from partners.rules import quote_burn


def authorise_redemption(ctx: LedgerContext, cmd: AuthoriseRedemption) -> HoldPlaced:
    request = check_spend_request(ctx, cmd)
    partner = request.partner

    def body(tx: Tx, fingerprint: str) -> HoldPlaced:
        spend = check_spend(ctx, request, tx, cmd)
        member_id, rule, accounts = spend.member_id, spend.rule, spend.accounts
        op, hold_id = operation_id(), new_id("hold")
        expires_at = tx.now + timedelta(seconds=partner.policy.hold_ttl_seconds)
        result = HoldPlaced(op, hold_id, cmd.points, spend.value, rule.version, expires_at,
                            spend.available - cmd.points)
        record_operation(
            tx, OperationRecord(id=op, partner_id=cmd.partner_id, member_id=member_id,
            kind="authorise", points=-cmd.points, result=result, key=cmd.idempotency_key,
            fingerprint=fingerprint, rule=rule, channel=cmd.channel, hold_id=hold_id,
            purchase_id=cmd.purchase_id, amount_minor=cmd.basket.amount_minor,
            currency=cmd.basket.currency)
        )
        tx.conn.execute(_INSERT_HOLD, {
            "id": hold_id, "partner_id": cmd.partner_id, "member_id": member_id,
            "operation_id": op, "points": cmd.points,
            "basket_amount_minor": cmd.basket.amount_minor, "purchase_id": cmd.purchase_id,
            "status": "authorised", "captured_points": 0, "expires_at": expires_at,
            "created_at": tx.now,
        })
        tx.ledger.post(op, accounts[AccountKind.WALLET], accounts[AccountKind.HELD],
                       cmd.points, tx.now)
        tx.ledger.take_from_lots(member_id, cmd.points, op, tx.now)
        return result

    return run_command(ctx, cmd.partner_id, cmd, HoldPlaced, body)


def validate_capture(cmd: CaptureRedemption) -> None:
    """Every check on a capture request alone, no I/O, in result-code order."""
    first_failure(lambda: check_key(cmd.idempotency_key), lambda: _check_capture_points(cmd))


def _check_capture_points(cmd: CaptureRedemption) -> None:
    if cmd.points is not None and cmd.points <= 0:
        raise InvalidAmount("points to capture must be positive", field="points")


def capture_redemption(ctx: LedgerContext, cmd: CaptureRedemption) -> HoldCaptured:
    partner = ctx.rules.partner(cmd.partner_id)
    validate_capture(cmd)

    def body(tx: Tx, fingerprint: str) -> HoldCaptured:
        hold = _open_hold(tx, cmd.partner_id, cmd.hold_id, expired_is_settled=False)
        if hold.expires_at <= tx.now:
            raise HoldExpired(f"hold {cmd.hold_id} expired at {hold.expires_at.isoformat()}",
                              field="holdId")
        held = int(hold.points)
        points = held if cmd.points is None else cmd.points
        if points > held:
            raise CaptureExceedsHold(requested=points, held=held)
        rule = ctx.rules.rule_at(cmd.partner_id, hold.created_at)
        quote = quote_burn(rule, points=points, basket_amount_minor=int(hold.basket_amount_minor))
        member_id = str(hold.member_id)
        tx.ledger.lock_member(member_id)
        accounts = tx.ledger.member_accounts(member_id)
        op = operation_id()
        released = held - points
        available = tx.ledger.member_balances(member_id)[AccountKind.WALLET] + released
        result = HoldCaptured(op, cmd.hold_id, points, released,
                              Money(quote.value_minor, partner.currency), available)
        record_operation(
            tx, OperationRecord(id=op, partner_id=cmd.partner_id, member_id=member_id,
            kind="capture", points=-points, result=result, key=cmd.idempotency_key,
            fingerprint=fingerprint, rule=rule, hold_id=cmd.hold_id, parent_id=hold.operation_id,
            purchase_id=hold.purchase_id, amount_minor=int(hold.basket_amount_minor),
            currency=partner.currency)
        )
        redeemed = tx.ledger.partner_account(cmd.partner_id, AccountKind.REDEEMED)
        tx.ledger.post(op, accounts[AccountKind.HELD], redeemed, points, tx.now)
        if released:
            _release(tx, op, member_id, hold, released)
        _settle(tx, cmd.hold_id, "captured", points)
        return result

    return run_command(ctx, cmd.partner_id, cmd, HoldCaptured, body)


def void_redemption(ctx: LedgerContext, cmd: VoidRedemption) -> HoldVoided:
    check_key(cmd.idempotency_key)

    def body(tx: Tx, fingerprint: str) -> HoldVoided:
        hold = _open_hold(tx, cmd.partner_id, cmd.hold_id)
        member_id = str(hold.member_id)
        tx.ledger.lock_member(member_id)
        held = int(hold.points)
        op = operation_id()
        available = tx.ledger.member_balances(member_id)[AccountKind.WALLET] + held
        result = HoldVoided(op, cmd.hold_id, held, available)
        record_operation(
            tx, OperationRecord(id=op, partner_id=cmd.partner_id, member_id=member_id, kind="void",
            points=held, result=result, key=cmd.idempotency_key, fingerprint=fingerprint,
            hold_id=cmd.hold_id, parent_id=hold.operation_id)
        )
        _release(tx, op, member_id, hold, held)
        _settle(tx, cmd.hold_id, "voided", 0)
        return result

    return run_command(ctx, cmd.partner_id, cmd, HoldVoided, body)


def _open_hold(tx: Tx, partner_id: str, hold_id: str, *, expired_is_settled: bool = True) -> Any:
    # Another partner's hold is answered exactly like a missing one (DESIGN §8).
    where = {"hold_id": hold_id, "partner_id": partner_id}
    member_id = tx.conn.execute(_HOLD_MEMBER, where).scalar()
    if member_id is None:
        raise NotFound(f"no hold {hold_id!r} at this partner", field="holdId")
    # Every change of a hold's status (capture, void, expiry) happens under its member's lock:
    # read the status only once that lock is ours, or two captures could both see it open.
    tx.ledger.lock_member(str(member_id))
    hold = tx.conn.execute(_HOLD, where).one()
    # A capture of a lapsed hold is HOLD_EXPIRED whether or not housekeeping has released it
    # yet; void's result type has no HOLD_EXPIRED, so there it stays "already settled".
    if hold.status == "expired" and not expired_is_settled:
        raise HoldExpired(f"hold {hold_id} expired at {hold.expires_at.isoformat()}",
                          field="holdId")
    if hold.status != "authorised":
        raise HoldAlreadySettled(f"hold {hold_id} is {hold.status} already", field="holdId")
    return hold


def _release(tx: Tx, op: str, member_id: str, hold: Any, points: int) -> None:
    """Held → wallet, putting the points back into the lots the hold took them from (the
    latest-expiring first, so what stays captured is what would have expired soonest)."""
    accounts = tx.ledger.member_accounts(member_id)
    tx.ledger.post(op, accounts[AccountKind.HELD], accounts[AccountKind.WALLET], points, tx.now)
    restores: list[LotTake] = []
    left = points
    for take in tx.ledger.lot_movements_of([hold.operation_id]):
        back = min(left, -take.points)
        if back > 0:
            restores.append(LotTake(take.lot_id, take.origin_partner_id, back))
            left -= back
    tx.ledger.record_lot_movements(restores, op, tx.now)


def _settle(tx: Tx, hold_id: str, status: str, captured: int) -> None:
    tx.conn.execute(_SETTLE, {"hold_id": hold_id, "status": status,
                                  "captured": captured})


# Statements built once (issue 11); another partner's hold reads exactly like a missing one.
_INSERT_HOLD = holds.insert()
_HOLD_MEMBER = select(holds.c.member_id).where(
    holds.c.id == bindparam("hold_id"), holds.c.partner_id == bindparam("partner_id"))
_HOLD = select(holds).where(
    holds.c.id == bindparam("hold_id"), holds.c.partner_id == bindparam("partner_id"))
_SETTLE = (update(holds).where(holds.c.id == bindparam("hold_id"))
           .values(status=bindparam("status"), captured_points=bindparam("captured")))
