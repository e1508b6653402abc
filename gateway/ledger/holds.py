"""Two-step redemption: authorise (points held), then capture (all or part) or void.

A hold moves points wallet → held and consumes lots at once, so held points cannot be spent
twice; capture moves held → the partner's redeemed account and gives back any part not captured;
void gives everything back. A hold past its TTL can no longer be captured; housekeeping (or a
void) releases it."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from gateway.core.errors import InvalidAmount, NotFound
from gateway.core.ids import new_id
from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext, check_key
from gateway.ledger.hold_repository import HoldRepository
from gateway.ledger.load import member_state
from gateway.ledger.model import (
    AuthoriseRedemption,
    CaptureRedemption,
    HoldCaptured,
    HoldPlaced,
    HoldVoided,
    VoidRedemption,
    from_json,
)
from gateway.ledger.planners import (
    HoldInput,
    HoldState,
    plan_authorise,
    plan_capture,
    plan_void,
)
from gateway.ledger.precedence import first_failure
from gateway.ledger.runner import Tx, operation_id, run_command
from gateway.ledger.service import (
    check_spend_request,
    load_spend,
    spend_discount,
    spend_input,
)
from gateway.promotions import coupons
from partners.config import RuleVersion


def authorise_redemption(ctx: LedgerContext, cmd: AuthoriseRedemption) -> HoldPlaced:
    request = check_spend_request(ctx, cmd)
    ttl = request.partner.policy.hold_ttl_seconds

    def body(tx: Tx, fingerprint: str) -> HoldPlaced:
        spend = load_spend(ctx, request, tx, cmd)
        # As at redeemPoints: a PointsDiscount prices the hold, a coupon that unlocks it is
        # used now (given back if the hold is voided or lapses).
        discount, presented = spend_discount(ctx, tx, cmd, spend)
        plan = plan_authorise(spend.state, spend.lots,
                              discount.rule(spend.rule) if discount else spend.rule,
                              spend_input(request, cmd, tx, fingerprint), new_id("hold"), ttl,
                              (discount.promotion,) if discount else (), presented.explanation)
        coupons.consume(tx.conn, presented, spend.state.member_id, plan.result.operation_id,
                        tx.now)
        apply(tx, plan.postings)
        return plan.result

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
        repo = HoldRepository(tx.conn)
        hold = _locked_hold(tx, repo, cmd.partner_id, cmd.hold_id)
        # The lots a hold took from are read only when some of it goes back.
        if cmd.points is not None and cmd.points < hold.points:
            hold = repo.with_takes(hold)
        request = HoldInput(cmd.partner_id, partner.currency, cmd.idempotency_key, fingerprint,
                            tx.now, operation_id(), cmd.points)
        plan = plan_capture(member_state(tx, hold.member_id), hold,
                            _priced(tx, hold, ctx.rules.rule_at(cmd.partner_id,
                                                                hold.created_at)),
                            tx.ledger.partner_account(cmd.partner_id, AccountKind.REDEEMED),
                            request)
        apply(tx, plan.postings)
        return plan.result

    return run_command(ctx, cmd.partner_id, cmd, HoldCaptured, body)


def void_redemption(ctx: LedgerContext, cmd: VoidRedemption) -> HoldVoided:
    check_key(cmd.idempotency_key)

    def body(tx: Tx, fingerprint: str) -> HoldVoided:
        repo = HoldRepository(tx.conn)
        hold = repo.with_takes(_locked_hold(tx, repo, cmd.partner_id, cmd.hold_id))
        request = HoldInput(cmd.partner_id, "", cmd.idempotency_key, fingerprint, tx.now,
                            operation_id())
        plan = plan_void(member_state(tx, hold.member_id), hold, request)
        apply(tx, plan.postings)
        coupons.restore(tx.conn, hold.operation_id, request.operation_id, tx.now)
        return plan.result

    return run_command(ctx, cmd.partner_id, cmd, HoldVoided, body)


def _priced(tx: Tx, hold: HoldState, rule: RuleVersion) -> RuleVersion:
    """The rule a capture pays at: the one in force when the hold was placed, with the point
    value its PointsDiscount gave, if one did (kept in the hold's answer: the capture pays
    what the till was quoted, whatever the campaign does after)."""
    placed = tx.ledger.operations_by_id([hold.operation_id]).get(hold.operation_id)
    if placed is None or rule.burn is None:
        return rule
    value = from_json(HoldPlaced, placed.result).point_value_minor
    if value is None:
        return rule
    return replace(rule, burn=replace(rule.burn, point_value_minor=Fraction(value)))


def _locked_hold(tx: Tx, repo: HoldRepository, partner_id: str, hold_id: str) -> HoldState:
    # Another partner's hold is answered exactly like a missing one (DESIGN §8).
    member_id = repo.member_of(partner_id, hold_id)
    if member_id is None:
        raise NotFound(f"no hold {hold_id!r} at this partner", field="holdId")
    # Every change of a hold's status (capture, void, expiry) happens under its member's lock:
    # read the status only once that lock is ours, or two captures could both see it open.
    tx.ledger.lock_member(member_id)
    return repo.get(partner_id, hold_id)
