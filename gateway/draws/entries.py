"""A member's entries in a draw: from qualifying purchases (the ``points.earned`` and
``points.returned`` events, :data:`CONSUMER`) and bought with points (:func:`enter_draw`).

**Purchases.** An earn at one of the draw's purchase partners (any partner when a coalition
draw names none), occurring in ``[opens_at, closes_at)`` while the draw is open, for at least
``min_spend`` in its currency, gives ``entries_per_purchase`` entries, fewer if the member's
limit leaves fewer. One ``draw_entries`` row per (draw, event) (UNIQUE), written in the
transaction that checks for it: a redelivered event adds nothing.

**Returns** (documented rule): a return occurring before ``closes_at`` of a draw still open
withdraws all the purchase's entries (a negative row) once what is left of the purchase
(amount less every return so far) is below the minimum spend, or nothing at all when the draw
has no minimum. A partial return that leaves the purchase qualifying keeps its entries. After
close nothing changes: the list is frozen and published. "Every return so far" is read from the
ledger (the earn by its primary key, its returns occurring before ``closes_at`` through
``ix_operations_partner_purchase``), not from the returns this draw has handled: delivery is
at least once in no promised order, so an earn handled after its return gives no entries for
what was returned already.

**Points.** ``enter_draw`` is one member command under the member's idempotency key (decision
033, the donation's path in ``gateway.ledger.member_ops``): the points move wallet ->
``partner:<owner>:redeemed`` as one operation of kind ``draw_entry``, consuming lots soonest
expiry first and rated with the owner's rule version, so settlement pays the owner for them
exactly as for a redemption there (``draw_entry`` is one of ``SETTLED_LOT_KINDS``).

Each write reads the draw row ``FOR SHARE`` on PostgreSQL (the close takes it ``FOR UPDATE``),
so no entry commits into a draw after its list was frozen; SQLite's ``BEGIN IMMEDIATE``
serialises them already."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select

from gateway.core.errors import (
    DrawClosed,
    DrawEntryLimit,
    DrawNotOpen,
    InsufficientPoints,
    InvalidAmount,
    InvalidInput,
    NotFound,
)
from gateway.db.retry import retrying
from gateway.db.tables import draw_entries, draws, operations
from gateway.draws import totals
from gateway.draws.model import MAX_ENTRIES_PER_MEMBER, Draw
from gateway.draws.service import to_draw
from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext, check_key
from gateway.ledger.housekeeping import sweep_member
from gateway.ledger.load import member_state, spendable_lots
from gateway.ledger.member_ops import active_member, run_member_command
from gateway.ledger.model import OperationRecord, request_hash
from gateway.ledger.planners import Move, Posting, take_lots
from gateway.ledger.runner import Tx, on_conflict_rerun, operation_id, transact
from gateway.outbox import Consumer, Event

EARNED, RETURNED = "points.earned", "points.returned"

_DRAW_COLUMNS = [c for c in draws.c if c.name != "entrant_key"]
_DRAW = select(*_DRAW_COLUMNS).where(draws.c.id == bindparam("draw_id"))  # primary key
# The open draws taking purchase entries at a time (ix_draws_status: status, closes_at); bounded
# by the number of open draws, never by the table.
_OPEN_AT = (select(*_DRAW_COLUMNS)
            .where(draws.c.status == "open", draws.c.closes_at > bindparam("at"),
                   draws.c.opens_at <= bindparam("at"),
                   draws.c.entries_per_purchase.is_not(None))
            .order_by(draws.c.id))
# ix_draw_entries_member (member_id, draw_id)
_HELD = select(func.coalesce(func.sum(draw_entries.c.entries), 0)).where(
    draw_entries.c.member_id == bindparam("member_id"),
    draw_entries.c.draw_id == bindparam("draw_id"))
# uq_draw_entries_event (draw_id, event_id)
_SEEN = select(draw_entries.c.id).where(draw_entries.c.draw_id == bindparam("draw_id"),
                                        draw_entries.c.event_id == bindparam("event_id"))
# ix_draw_entries_draw (draw_id, operation_id): one purchase's rows in one draw
_PURCHASE = (select(func.sum(draw_entries.c.amount_minor), func.sum(draw_entries.c.entries),
                    func.count(), func.min(draw_entries.c.member_id))
             .where(draw_entries.c.draw_id == bindparam("draw_id"),
                    draw_entries.c.operation_id == bindparam("operation_id"),
                    draw_entries.c.source.in_(("purchase", "return"))))
_INSERT = insert(draw_entries)
_EARN = select(operations.c.partner_id, operations.c.purchase_id, operations.c.amount_minor
               ).where(operations.c.id == bindparam("id"))  # primary key
# ix_operations_partner_purchase (partner_id, purchase_id): the purchase's own few operations.
_RETURNED = select(func.coalesce(func.sum(operations.c.amount_minor), 0)).where(
    operations.c.partner_id == bindparam("partner_id"),
    operations.c.purchase_id == bindparam("purchase_id"), operations.c.kind == "return",
    operations.c.parent_id == bindparam("earn_id"),
    operations.c.occurred_at < bindparam("before", type_=operations.c.occurred_at.type))


def _shared(conn: Connection, stmt: Any) -> Any:
    return stmt.with_for_update(read=True) if conn.dialect.name == "postgresql" else stmt


def held(conn: Connection, draw_id: str, member_id: str) -> int:
    return int(conn.execute(_HELD, {"member_id": member_id, "draw_id": draw_id}).scalar_one())


# --- purchases (events) ---------------------------------------------------------------------------
def handle(engine: Engine, event: Event) -> None:
    """The consumer: idempotent under ``event.id`` (UNIQUE (draw_id, event_id))."""
    if event.member_id is None or event.type not in (EARNED, RETURNED):
        return
    body = _earned if event.type == EARNED else _returned

    def once(conn: Connection) -> None:
        tx = Tx.on(conn, event.recorded_at)
        open_draws = [to_draw(r) for r in conn.execute(_shared(conn, _OPEN_AT),
                                                       {"at": event.occurred_at}).all()]
        for draw in open_draws:
            if conn.execute(_SEEN, {"draw_id": draw.id, "event_id": event.id}).first() is None:
                body(tx, draw, event)

    retrying(lambda: on_conflict_rerun(lambda: transact(engine, once)))


CONSUMER = Consumer("draws", frozenset({EARNED, RETURNED}), handle)


def qualifies(draw: Draw, partner_id: str | None, amount_minor: int | None,
              currency: str | None) -> bool:
    if draw.purchase_partners is None or partner_id is None:
        return False
    if draw.purchase_partners and partner_id not in draw.purchase_partners:
        return False
    if draw.min_spend is None:
        return True
    return (currency == draw.min_spend.currency and amount_minor is not None
            and amount_minor >= draw.min_spend.amount_minor)


def _earned(tx: Tx, draw: Draw, event: Event) -> None:
    amount, currency = event.data.get("amount_minor"), event.data.get("currency")
    if not qualifies(draw, event.partner_id, amount, currency):
        return
    member_id = str(event.member_id)
    tx.ledger.lock_member(member_id)
    before = held(tx.conn, draw.id, member_id)
    room = draw.max_entries_per_member - before
    given = max(0, min(int(draw.entries_per_purchase or 0), room))
    left = _left(tx, draw, str(event.operation_id))
    if left is not None and left < _minimum(draw):
        given = 0  # returned (below the minimum) before this event was handled
    # A row even when the limit leaves nothing: a later return of this purchase then finds it.
    tx.conn.execute(_INSERT, {
        "draw_id": draw.id, "member_id": member_id, "source": "purchase",
        "event_id": event.id, "operation_id": event.operation_id, "amount_minor": amount,
        "entries": given, "points": 0, "recorded_at": tx.now})
    totals.add(tx.conn, draw.id, before=before, entries=given)


def _returned(tx: Tx, draw: Draw, event: Event) -> None:
    parent = event.data.get("parent_id")
    if parent is None:
        return
    # The purchase's rows are read under the member's lock: two returns of it handled at once
    # would otherwise both see its entries standing and both withdraw them.
    tx.ledger.lock_member(str(event.member_id))
    net, entries, rows, member = tx.conn.execute(
        _PURCHASE, {"draw_id": draw.id, "operation_id": parent}).one()
    if not rows:
        return  # not a purchase this draw counted
    returned = event.data.get("amount_minor")
    known = _left(tx, draw, str(parent))
    left = (0 if returned is None else int(net or 0) - int(returned)) if known is None else known
    withdrawn = -int(entries or 0) if left < _minimum(draw) and int(entries or 0) > 0 else 0
    tx.ledger.lock_member(str(member))
    before = held(tx.conn, draw.id, str(member)) if withdrawn else 0
    tx.conn.execute(_INSERT, {
        "draw_id": draw.id, "member_id": str(member), "source": "return",
        "event_id": event.id, "operation_id": parent,
        "amount_minor": None if returned is None else -int(returned), "entries": withdrawn,
        "points": 0, "recorded_at": tx.now})
    if withdrawn:
        totals.add(tx.conn, draw.id, before=before, entries=withdrawn)


def _minimum(draw: Draw) -> int:
    return 1 if draw.min_spend is None else max(draw.min_spend.amount_minor, 1)


def _left(tx: Tx, draw: Draw, earn_id: str) -> int | None:
    """What is left of the earn's purchase after every return of it occurring before the
    draw's close time and committed so far (None: not a purchase the ledger knows). A return's
    event is written with its operation, so a return being handled is always among these."""
    earn = tx.conn.execute(_EARN, {"id": earn_id}).first()
    if earn is None or earn.amount_minor is None:
        return None
    returned = 0 if earn.purchase_id is None else int(tx.conn.execute(_RETURNED, {
        "partner_id": earn.partner_id, "purchase_id": earn.purchase_id, "earn_id": earn_id,
        "before": draw.closes_at}).scalar_one())
    return int(earn.amount_minor) - returned


# --- points ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EnteredDraw:
    operation_id: str
    draw_id: str
    entries: int
    total_entries: int
    points: int
    available: int
    recorded_at: datetime
    explanation: tuple[str, ...]


def enter_draw(ctx: LedgerContext, member_id: str, draw_id: str, entries: int,
               idempotency_key: str) -> EnteredDraw:
    """Buy ``entries`` in an open draw with points. Errors in order: INVALID_AMOUNT
    (entries), IDEMPOTENCY_KEY_REUSED, NOT_FOUND (drawId), INVALID_INPUT (not for sale),
    DRAW_NOT_OPEN / DRAW_CLOSED, DRAW_ENTRY_LIMIT, RULE_NOT_IN_FORCE, INSUFFICIENT_POINTS."""
    if not 1 <= entries <= MAX_ENTRIES_PER_MEMBER:
        raise InvalidAmount(f"entries must be between 1 and {MAX_ENTRIES_PER_MEMBER}",
                            field="entries")
    check_key(idempotency_key)
    fingerprint = request_hash({"draw": draw_id, "entries": entries})

    def body(tx: Tx) -> tuple[EnteredDraw, str | None]:
        result = _enter_in(ctx, tx, member_id, draw_id, entries)
        return result, result.operation_id

    return run_member_command(ctx.engine, ctx.clock, member_id, idempotency_key, "draw_entry",
                              fingerprint, EnteredDraw, body)


def _enter_in(ctx: LedgerContext, tx: Tx, member_id: str, draw_id: str,
              entries: int) -> EnteredDraw:
    row = tx.conn.execute(_shared(tx.conn, _DRAW), {"draw_id": draw_id}).first()
    if row is None:
        raise NotFound(f"no draw {draw_id!r}", field="drawId")
    draw = to_draw(row)
    if draw.points_per_entry is None or draw.owner_partner_id is None:
        raise InvalidInput("this draw's entries are not for sale (purchases only)",
                           field="drawId")
    if draw.status != "open" or tx.now >= draw.closes_at:
        raise DrawClosed(f"the draw closed at {draw.closes_at.isoformat()}", field="drawId")
    if tx.now < draw.opens_at:
        raise DrawNotOpen(f"the draw opens at {draw.opens_at.isoformat()}", field="drawId")
    tx.ledger.lock_member(member_id)
    active_member(tx, member_id)
    already = held(tx.conn, draw.id, member_id)
    if already + entries > draw.max_entries_per_member:
        raise DrawEntryLimit(draw.max_entries_per_member, already, entries)
    owner = draw.owner_partner_id
    points = entries * draw.points_per_entry
    rule = ctx.rules.rule_at(owner, tx.now)
    sweep_member(tx, member_id)
    state = member_state(tx, member_id)
    if points > state.available:
        raise InsufficientPoints(requested=points, available=state.available)
    op = operation_id()
    result = EnteredDraw(op, draw.id, entries, already + entries, points,
                         state.available - points, tx.now,
                         (f"{entries} entries in the draw {draw.name!r} for {points} points "
                          f"({draw.points_per_entry} each)",))
    record = OperationRecord(id=op, partner_id=owner, member_id=member_id, kind="draw_entry",
                             points=-points, result=result, rule=rule)
    redeemed = tx.ledger.partner_account(owner, AccountKind.REDEEMED)
    apply(tx, [Posting(record, (Move(state.account(AccountKind.WALLET), redeemed, points),),
                       lot_moves=take_lots(spendable_lots(tx, member_id), points, tx.now))])
    tx.conn.execute(_INSERT, {
        "draw_id": draw.id, "member_id": member_id, "source": "points", "event_id": None,
        "operation_id": op, "amount_minor": None, "entries": entries, "points": points,
        "recorded_at": tx.now})
    totals.add(tx.conn, draw.id, before=already, entries=entries)
    return result
