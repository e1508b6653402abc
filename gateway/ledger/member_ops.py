"""Ledger commands a member makes for themself (issue 10): donate points to a charity, merge a
second account into this one, and the points side of erasure (forfeit or donate what is left).

A member's command has no partner of its own, so its idempotency key is kept per member in
``member_requests`` (a replay returns the stored answer; another request under the same key is
``IDEMPOTENCY_KEY_REUSED``), not by ``operations``' (partner, key).

- **Donate** is a redemption at the charity: wallet -> ``partner:<charity>:redeemed``, lots
  consumed soonest expiry first, rated with the charity's rule version, so settlement pays the
  charity exactly as it pays a redeemer (kind ``donate``).
- **Merge** moves the absorbed member's wallet, pending and debt to the survivor by transfers in
  one operation (kind ``merge``), and every lot with points left becomes a new lot on the
  survivor with the same origin partner, earn date and expiry (the old lots are consumed by lot
  movements). Every lot is copied at its full size, used-up ones too, less what was used of it,
  and the copy names its original (``lots.merged_from``): a return after the merge refunds into
  the survivor's copy of the lot its spend consumed (``ledger.service.return_purchase``).
  Only member accounts move, so settlement sees nothing (member to member).
  ``operations.partner_id`` is required, so the merge is recorded under the origin partner of
  the absorbed member's soonest-expiring lot (or of its latest operation when it has no lots);
  partners' own history views leave merges out. An absorbed member with nothing to move gets
  no operation (links and status still move). Open holds on the absorbed member refuse the
  merge until captured or voided.
- **Forfeit** (erasure) moves what is left to ``coalition:breakage``, one operation per origin
  partner, like expiry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, insert, select, update

from gateway.core.clock import Clock
from gateway.core.errors import (
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidAmount,
    InvalidInput,
    NotFound,
    UnknownMember,
)
from gateway.db.retry import retrying
from gateway.db.tables import holds, lots, member_requests, members, operations
from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext
from gateway.ledger.context import check_key as check_key
from gateway.ledger.housekeeping import sweep_member
from gateway.ledger.load import member_state, spendable_lots
from gateway.ledger.lot_repository import LotRepository, LotTake
from gateway.ledger.model import OperationRecord, from_json, request_hash, to_json
from gateway.ledger.planners import Move, Posting, take_lots
from gateway.ledger.runner import (
    Tx,
    on_conflict_rerun,
    operation_id,
    record_operation,
    transact,
)
from gateway.promotions import tiers
from partners.config import PartnerKind

R = TypeVar("R")
MAX_POINTS = 10**12


@dataclass(frozen=True, slots=True)
class Donated:
    operation_id: str
    charity_partner_id: str
    points: int
    available: int
    recorded_at: datetime
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Merged:
    operation_id: str | None  # None: the absorbed member held nothing to move
    survivor_id: str
    absorbed_id: str
    wallet: int
    pending: int
    debt: int
    lots: int
    links_moved: tuple[str, ...]  # partner ids whose link now reaches the survivor
    links_closed: tuple[str, ...]  # partner ids where the survivor was linked already
    recorded_at: datetime
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Forfeited:
    points: int
    by_origin: tuple[tuple[str, int], ...]


def run_member_command(engine: Engine, clock: Clock, member_id: str, key: str, kind: str,
                       fingerprint: str, result_type: type[R],
                       body: Callable[[Tx], tuple[R, str | None]]) -> R:
    """Run ``body`` once per (member, key) in one write transaction; replay otherwise."""
    check_key(key)

    def once(conn: Connection) -> R:
        tx = Tx.on(conn, clock.now())
        tx.ledger.lock_key(f"member:{member_id}", key)
        row = conn.execute(
            select(member_requests.c.kind, member_requests.c.request_hash,
                   member_requests.c.result)
            .where(member_requests.c.member_id == member_id,
                   member_requests.c.idempotency_key == key)).first()
        if row is not None:
            if row.kind != kind or row.request_hash != fingerprint:
                raise IdempotencyKeyReused(key)
            return from_json(result_type, row.result)
        result, op = body(tx)
        conn.execute(insert(member_requests), {
            "member_id": member_id, "idempotency_key": key, "kind": kind,
            "request_hash": fingerprint, "operation_id": op, "result": to_json(result),
            "at": tx.now})
        return result

    return retrying(lambda: on_conflict_rerun(lambda: transact(engine, once)))


def active_member(tx: Tx, member_id: str, field: str | None = None) -> None:
    status = tx.conn.execute(
        select(members.c.status).where(members.c.id == member_id)).scalar_one_or_none()
    if status != "active":
        raise UnknownMember("no active coalition member", field=field)


def charity(ctx: LedgerContext, partner_id: str) -> None:
    try:
        partner = ctx.rules.partner(partner_id)
    except NotFound:
        partner = None
    if partner is None or partner.kind != PartnerKind.CHARITY:
        raise NotFound(f"no charity partner {partner_id!r}", field="charityPartnerId")


# --- donate ---------------------------------------------------------------------------------------
def donate_points(ctx: LedgerContext, member_id: str, charity_partner_id: str, points: int,
                  idempotency_key: str) -> Donated:
    """Give ``points`` from the member's wallet to a charity partner (settled as a redemption
    there). Errors: INVALID_AMOUNT, IDEMPOTENCY_KEY_REUSED, NOT_FOUND (not a charity),
    RULE_NOT_IN_FORCE, INSUFFICIENT_POINTS."""
    if points <= 0 or points > MAX_POINTS:
        raise InvalidAmount(f"points must be between 1 and {MAX_POINTS}", field="points")
    check_key(idempotency_key)
    charity(ctx, charity_partner_id)
    fingerprint = request_hash({"charity": charity_partner_id, "points": points})

    def body(tx: Tx) -> tuple[Donated, str | None]:
        tx.ledger.lock_member(member_id)
        active_member(tx, member_id)
        result = donate_in(ctx, tx, member_id, charity_partner_id, points)
        return result, result.operation_id

    return run_member_command(ctx.engine, ctx.clock, member_id, idempotency_key, "donate",
                              fingerprint, Donated, body)


def donate_in(ctx: LedgerContext, tx: Tx, member_id: str, charity_partner_id: str,
              points: int) -> Donated:
    """The donation inside an open transaction (also erasure's ``DONATE``)."""
    rule = ctx.rules.rule_at(charity_partner_id, tx.now)
    tx.ledger.lock_member(member_id)
    sweep_member(tx, member_id)
    state = member_state(tx, member_id)  # accounts and balances, one read
    if points > state.available:
        raise InsufficientPoints(requested=points, available=state.available)
    name = ctx.rules.partner(charity_partner_id).name
    op = operation_id()
    result = Donated(op, charity_partner_id, points, state.available - points, tx.now,
                     (f"{points} points donated to {name}",))
    record = OperationRecord(id=op, partner_id=charity_partner_id, member_id=member_id,
                             kind="donate", points=-points, result=result, rule=rule)
    redeemed = tx.ledger.partner_account(charity_partner_id, AccountKind.REDEEMED)
    apply(tx, [Posting(record, (Move(state.account(AccountKind.WALLET), redeemed, points),),
                       lot_moves=take_lots(spendable_lots(tx, member_id), points, tx.now))])
    return result


# --- forfeit --------------------------------------------------------------------------------------
def forfeit_in(tx: Tx, member_id: str) -> Forfeited:
    """Everything left in the wallet and pending to coalition breakage, one operation per
    origin partner (like expiry). Holds stay with their partner until captured or voided."""
    tx.ledger.lock_member(member_id)
    sweep_member(tx, member_id)
    accounts = tx.ledger.member_accounts(member_id)
    breakage = tx.ledger.coalition_account(AccountKind.BREAKAGE)
    by_origin: dict[str, list[tuple[int, int, bool]]] = defaultdict(list)
    for lot_id, origin, remaining, pending in _live_lots(tx, member_id):
        by_origin[origin].append((lot_id, remaining, pending))
    totals: list[tuple[str, int]] = []
    for origin, found in sorted(by_origin.items()):
        op = operation_id()
        points = sum(r for _, r, _ in found)
        record_operation(tx, OperationRecord(id=op, partner_id=origin, member_id=member_id,
                         kind="forfeit", points=-points, result={"forfeited": points}))
        for kind, pending in ((AccountKind.WALLET, False), (AccountKind.PENDING, True)):
            amount = sum(r for _, r, p in found if p == pending)
            if amount:
                tx.ledger.post(op, accounts[kind], breakage, amount, tx.now)
        LotRepository(tx.conn).record_lot_movements(
            [LotTake(lot_id, origin, -r) for lot_id, r, _ in found], op, tx.now)
        totals.append((origin, points))
    return Forfeited(sum(p for _, p in totals), tuple(totals))


def _live_lots(tx: Tx, member_id: str) -> list[tuple[int, str, int, bool]]:
    rows = tx.conn.execute(
        select(lots.c.id, lots.c.origin_partner_id, lots.c.remaining, lots.c.pending)
        .where(lots.c.member_id == member_id, lots.c.remaining > 0)
        .order_by(lots.c.expires_at, lots.c.id)).all()
    return [(int(r[0]), str(r[1]), int(r[2]), bool(r[3])) for r in rows]


# --- merge ----------------------------------------------------------------------------------------
def merge_members(engine: Engine, clock: Clock, survivor_id: str, absorbed_id: str, actor: str,
                  *, idempotency_key: str | None = None) -> Merged:
    """Absorb ``absorbed_id`` into ``survivor_id``; the caller has proved the member controls
    both. Replaying a finished merge (same key, or no key and the absorbed member already merged
    into the survivor) answers again without moving anything."""
    if survivor_id == absorbed_id:
        raise InvalidInput("an account cannot be merged into itself", field="cardNumber")
    key = idempotency_key or f"merge:{absorbed_id}"
    fingerprint = request_hash({"absorbed": absorbed_id})

    def body(tx: Tx) -> tuple[Merged, str | None]:
        result = merge_in(tx, survivor_id, absorbed_id, actor)
        return result, result.operation_id

    return run_member_command(engine, clock, survivor_id, key, "merge", fingerprint, Merged,
                              body)


def merge_in(tx: Tx, survivor_id: str, absorbed_id: str, actor: str) -> Merged:
    # Locked first, then checked: a concurrent merge or erasure of either has committed by the
    # time the lock is ours, and the check sees it.
    for member_id in sorted((survivor_id, absorbed_id)):
        tx.ledger.lock_member(member_id)
    active_member(tx, survivor_id)
    active_member(tx, absorbed_id, field="cardNumber")
    for member_id in sorted((survivor_id, absorbed_id)):
        sweep_member(tx, member_id)
    open_holds = tx.conn.execute(
        select(holds.c.id).where(holds.c.member_id == absorbed_id,
                                 holds.c.status == "authorised")).first()
    if open_holds is not None:
        raise InvalidInput("the account to merge has points on hold at a till; merge it once "
                           "the purchase is finished", field="cardNumber")
    balances = tx.ledger.member_balances(absorbed_id)
    wallet, pending = balances[AccountKind.WALLET], balances[AccountKind.PENDING]
    debt = -balances[AccountKind.DEBT]
    live = tx.conn.execute(
        select(lots.c.id, lots.c.origin_partner_id, lots.c.remaining, lots.c.pending,
               lots.c.earned_at, lots.c.available_at, lots.c.expires_at, lots.c.points)
        .where(lots.c.member_id == absorbed_id)
        .order_by(lots.c.expires_at, lots.c.id)).all()
    # Every lot is copied, used-up ones too: a return after the merge refunds into the copy
    # of the lot its spend consumed (``lots.merged_from``), never into the absorbed account.
    every, live = live, [lot for lot in live if lot.remaining > 0]
    moved, closed = _move_links(tx, survivor_id, absorbed_id, actor)
    op: str | None = None
    partner = str((live or every)[0].origin_partner_id) if every else _last_partner(
        tx, absorbed_id)
    explanation = (f"account merged in: {wallet} available, {pending} pending, {debt} owed, "
                   f"{len(live)} lots with their own expiry dates",)
    if partner is not None and (wallet or pending or debt or every):
        op = operation_id()
    result = Merged(op, survivor_id, absorbed_id, wallet, pending, debt, len(live),
                    tuple(moved), tuple(closed), tx.now, explanation)
    if op is not None and partner is not None:
        record_operation(tx, OperationRecord(id=op, partner_id=partner, member_id=survivor_id,
                         kind="merge", points=wallet, result=result))
        ours = tx.ledger.member_accounts(survivor_id)
        theirs = tx.ledger.member_accounts(absorbed_id)
        if wallet:
            tx.ledger.post(op, theirs[AccountKind.WALLET], ours[AccountKind.WALLET], wallet,
                           tx.now)
        if pending:
            tx.ledger.post(op, theirs[AccountKind.PENDING], ours[AccountKind.PENDING], pending,
                           tx.now)
        if debt:
            tx.ledger.post(op, ours[AccountKind.DEBT], theirs[AccountKind.DEBT], debt, tx.now)
        takes = []
        for lot in every:
            # The copy has the old lot's full size, less what was used of it (a movement of
            # the merge), so a later return can refund into it what its spends took.
            copy = LotRepository(tx.conn).create_lot(
                member_id=survivor_id, origin_partner_id=lot.origin_partner_id,
                operation_id=op, points=int(lot.points), earned_at=lot.earned_at,
                expires_at=lot.expires_at,
                available_at=lot.available_at if lot.pending else None, merged_from=int(lot.id))
            if lot.remaining:
                takes.append(LotTake(int(lot.id), str(lot.origin_partner_id),
                                     -int(lot.remaining)))
            if lot.points != lot.remaining:
                takes.append(LotTake(copy, str(lot.origin_partner_id),
                                     int(lot.remaining) - int(lot.points)))
        LotRepository(tx.conn).record_lot_movements(takes, op, tx.now)
    # The absorbed member's qualifying points count for the survivor's tier (decision 026).
    tiers.move_progress(tx.conn, survivor_id, absorbed_id)
    tx.conn.execute(update(members).where(members.c.id == absorbed_id)
                        .values(status="merged", merged_into=survivor_id))
    return result


def _move_links(tx: Tx, survivor_id: str, absorbed_id: str,
                actor: str) -> tuple[list[str], list[str]]:
    ours = {p for p, _, _, _ in tx.members.open_links(survivor_id)}
    moved, closed = [], []
    for partner_id, customer_id, _, _ in tx.members.open_links(absorbed_id):
        tx.members.close_link(partner_id, absorbed_id, tx.now, via="merge", actor=actor)
        if partner_id in ours:
            closed.append(partner_id)
        else:
            tx.members.link(partner_id, customer_id, survivor_id, tx.now, via="merge",
                            actor=actor)
            moved.append(partner_id)
    return moved, closed


def _last_partner(tx: Tx, member_id: str) -> str | None:
    found = tx.conn.execute(
        select(operations.c.partner_id).where(operations.c.member_id == member_id)
        .order_by(operations.c.id.desc()).limit(1)).scalar_one_or_none()
    return None if found is None else str(found)
