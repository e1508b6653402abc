"""Enrol customers and read a member as one partner sees them (DESIGN §6); linking with the
member's consent is in :mod:`gateway.members.linking`.

A partner addresses members by its own customer ids only; every read here starts from the
partner's link, so another partner's customers, operations and holds simply do not exist
for it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.tables import (
    accounts,
    holds,
    linked_accounts,
    lot_movements,
    lots,
    operations,
    transfers,
)
from gateway.db.uow import UnitOfWork
from gateway.ledger.chart import MEMBER_KINDS, AccountKind
from gateway.ledger.model import Balance
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.retry import retrying
from gateway.members.identity import PAIRWISE_SECRET, member_reference
from gateway.members.repository import MAX_MERGED, MemberRepository
from gateway.members.secrets import server_secret

MAX_CUSTOMER_ID = 128
EXPIRING_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Membership:
    member_id: str
    customer_id: str
    partner_id: str
    linked_at: datetime
    created: bool
    # This partner's pairwise reference for the member: all a partner ever sees of who it is.
    member_reference: str = ""
    # Only in the answer that created the member at a till: printed on the receipt, shown once.
    card_number: str | None = None
    activation_code: str | None = None


@dataclass(frozen=True, slots=True)
class OperationView:
    id: str
    kind: str
    points: int
    channel: str | None
    purchase_id: str | None
    amount_minor: int | None
    currency: str | None
    rule_version: int | None
    occurred_at: datetime
    recorded_at: datetime
    # The operation's net transfer into the member's wallet: its effect on available points
    # (an earn that repaid debt counts what reached the wallet, a capture what the hold gave
    # back). Every entry's change adds up to the wallet.
    available_change: int = 0


@dataclass(frozen=True, slots=True)
class OperationPage:
    items: list[OperationView]
    has_next: bool
    end_cursor: str | None


def check_customer_id(customer_id: str) -> None:
    if not customer_id.strip() or len(customer_id) > MAX_CUSTOMER_ID:
        raise InvalidInput(
            f"customerId must be 1 to {MAX_CUSTOMER_ID} characters, not blank", field="customerId"
        )


def enrol_customer(engine: Engine, clock: Clock, partner_id: str, customer_id: str) -> Membership:
    """Create a member with an empty wallet, linked to this partner's customer. Enrolling a
    customer that is already linked returns that membership (``created`` false): retries are
    safe without a key."""
    check_customer_id(customer_id)
    pairwise = server_secret(engine, clock, PAIRWISE_SECRET)
    return retried(lambda: _enrol(engine, clock, pairwise, partner_id, customer_id))


def _enrol(engine: Engine, clock: Clock, pairwise: bytes, partner_id: str,
           customer_id: str) -> Membership:
    with UnitOfWork(engine) as uow:
        repo, now = MemberRepository(uow.conn), clock.now()
        existing = repo.member_for_customer(partner_id, customer_id)
        if existing is not None:
            linked_at = repo.linked_at(partner_id, customer_id)
            assert linked_at is not None
            return Membership(existing, customer_id, partner_id, linked_at, created=False,
                              member_reference=member_reference(pairwise, partner_id, existing))
        new = repo.create(now, with_activation=True)
        repo.link(partner_id, customer_id, new.member_id, now, via="enrolment",
                  actor=f"partner:{partner_id}")
        LedgerRepository(uow.conn).member_accounts(new.member_id)
        uow.commit()
        return Membership(new.member_id, customer_id, partner_id, now, created=True,
                          member_reference=member_reference(pairwise, partner_id, new.member_id),
                          card_number=new.card_number, activation_code=new.activation_code)


def retried(unit: Callable[[], Membership]) -> Membership:
    """Enrol and link check, then insert a link: a concurrent twin that inserted the same link
    first makes ours fail on the primary key. Run again, the check finds the twin's link and
    answers as a retry would (the same membership, or ALREADY_LINKED). Deadlocks and
    serialisation failures are retried too (gateway.ledger.retry)."""
    for attempt in range(3):
        try:
            return retrying(unit)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def find_memberships(
    engine: Engine, clock: Clock, partner_id: str, customer_ids: Collection[str]
) -> dict[str, Membership]:
    """This partner's links for many customer ids in one statement (the API's per-request
    loader batches lookups with it); a customer id with no link here is simply absent."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    pairwise = server_secret(engine, clock, PAIRWISE_SECRET)
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(_MEMBERSHIPS, {"partner_id": partner_id, "customers": wanted}
                                ).all()
    return {
        customer_id: Membership(member_id, customer_id, partner_id, linked_at, created=False,
                                member_reference=member_reference(pairwise, partner_id,
                                                                  member_id))
        for customer_id, member_id, linked_at in rows
    }


def member_balance(engine: Engine, clock: Clock, member_id: str) -> Balance:
    return member_balances(engine, clock, [member_id])[member_id]


def member_balances(
    engine: Engine, clock: Clock, member_ids: Collection[str]
) -> dict[str, Balance]:
    """Balances of many members in three statements whatever their number (stored account
    balances; lots, soon-expiring and already due; lapsed holds). Every requested id is in the
    answer; an id with no accounts has zero balances.

    A read never writes, so it shows the balance as the member's next write will see it after
    housekeeping: points past their expiry are not available, pending points past their return
    window are (less any debt they will repay), and lapsed holds are back in the wallet."""
    wanted = sorted(set(member_ids))
    if not wanted:
        return {}
    kinds = [str(kind) for kind in MEMBER_KINDS]
    with UnitOfWork(engine, write=False) as uow:
        now = clock.now()
        before = now + EXPIRING_WINDOW
        # Statements built once (below): building them per call was ~1.5 ms (issue 11).
        params = {"members": wanted, "kinds": kinds, "now": now, "before": before}
        stored = uow.conn.execute(_STORED, params).all()
        expiring_rows = uow.conn.execute(_EXPIRING, params).all()
        due_rows = uow.conn.execute(_DUE, params).all()
        # A lapsed hold's points go back into the lots it took them from; those that land in a
        # lot already past its expiry expire with it, so only the others return to the wallet.
        lapsed_rows = uow.conn.execute(_LAPSED, params).all()
    expired = {m: int(e or 0) for m, e, _, _ in due_rows}
    matured = {m: int(p or 0) for m, _, p, _ in due_rows}
    matured_expired = {m: int(x or 0) for m, _, _, x in due_rows}
    lapsed = {m: int(points or 0) for m, points, _ in lapsed_rows}
    lapsed_back = {m: int(back or 0) for m, _, back in lapsed_rows}
    found: dict[str, dict[AccountKind, int]] = {member_id: {} for member_id in wanted}
    for member_id, kind, amount in stored:
        found[member_id][AccountKind(kind)] = int(amount)
    expiring = {member_id: int(total) for member_id, total in expiring_rows}
    balances: dict[str, Balance] = {}
    for member_id, kinds_of in found.items():
        released = matured.get(member_id, 0)
        released_spendable = released - matured_expired.get(member_id, 0)
        debt = -kinds_of.get(AccountKind.DEBT, 0)
        repaid = min(debt, released_spendable)
        balances[member_id] = Balance(
            available=kinds_of.get(AccountKind.WALLET, 0) - expired.get(member_id, 0)
            + lapsed_back.get(member_id, 0) + released - repaid,
            held=kinds_of.get(AccountKind.HELD, 0) - lapsed.get(member_id, 0),
            pending=kinds_of.get(AccountKind.PENDING, 0) - released,
            debt=debt - repaid,
            expiring_soon=expiring.get(member_id, 0), expiring_before=before,
        )
    return balances


# --- read statements, built once ----------------------------------------------------------------
_MEMBERSHIPS = select(
    linked_accounts.c.customer_id, linked_accounts.c.member_id, linked_accounts.c.linked_at
).where(linked_accounts.c.partner_id == bindparam("partner_id"),
        linked_accounts.c.customer_id.in_(bindparam("customers", expanding=True)),
        linked_accounts.c.closed_at.is_(None))
_MEMBERS: BindParameter[str] = bindparam("members", expanding=True)
_NOW = bindparam("now", type_=lots.c.expires_at.type)
_STORED = (select(accounts.c.member_id, accounts.c.kind, accounts.c.balance)
           .where(accounts.c.member_id.in_(_MEMBERS),
                  accounts.c.kind.in_(bindparam("kinds", expanding=True))))
_EXPIRING = (
    select(lots.c.member_id, func.coalesce(func.sum(lots.c.remaining), 0))
    .where(lots.c.member_id.in_(_MEMBERS), lots.c.expires_at > _NOW,
           lots.c.expires_at <= bindparam("before", type_=lots.c.expires_at.type))
    .group_by(lots.c.member_id))
_DUE = (
    select(
        lots.c.member_id,
        # Past expiry (pending or not: a matured pending lot is released, then expired, by
        # the same sweep).
        func.sum(case((and_(lots.c.expires_at <= _NOW,
                            or_(lots.c.pending == 0, lots.c.available_at <= _NOW)),
                       lots.c.remaining), else_=0)),
        func.sum(case((and_(lots.c.pending == 1, lots.c.available_at <= _NOW),
                       lots.c.remaining), else_=0)),
        func.sum(case((and_(lots.c.pending == 1, lots.c.available_at <= _NOW,
                            lots.c.expires_at <= _NOW), lots.c.remaining), else_=0)),
    )
    .where(lots.c.member_id.in_(_MEMBERS), lots.c.remaining > 0,
           or_(lots.c.expires_at <= _NOW, and_(lots.c.pending == 1, lots.c.available_at <= _NOW)))
    .group_by(lots.c.member_id))
_LAPSED = (
    select(
        holds.c.member_id,
        func.sum(-lot_movements.c.points),
        func.sum(case((lots.c.expires_at > _NOW, -lot_movements.c.points), else_=0)),
    )
    .join(lot_movements, lot_movements.c.operation_id == holds.c.operation_id)
    .join(lots, lots.c.id == lot_movements.c.lot_id)
    .where(holds.c.member_id.in_(_MEMBERS), holds.c.status == "authorised",
           holds.c.expires_at <= _NOW)
    .group_by(holds.c.member_id))


def member_history(
    engine: Engine, partner_id: str, member_id: str, first: int, after: str | None
) -> OperationPage:
    """The member's operations at this partner only, newest first, keyset-paginated; with
    those recorded at this partner under accounts since merged into the member (the same
    person's history with this partner; another partner's operations never show)."""
    with UnitOfWork(engine, write=False) as uow:
        ids = MemberRepository(uow.conn).with_absorbed(member_id, MAX_MERGED)
    params: dict[str, object] = {"members": list(ids), "partner_id": partner_id,
                                 "limit": first + 1}
    query = _HISTORY
    if after is not None:
        query, params["after"] = _HISTORY_AFTER, decode_cursor(after)
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(query, params).all()
        changes = _wallet_changes(uow.conn, list(ids), [str(row.id) for row in rows[:first]])
    items = [OperationView(**row._asdict(), available_change=changes.get(str(row.id), 0))
             for row in rows[:first]]
    end = encode_cursor(items[-1].id) if items else None
    return OperationPage(items, has_next=len(rows) > first, end_cursor=end)


_HISTORY = (
    select(
        operations.c.id, operations.c.kind, operations.c.points, operations.c.channel,
        operations.c.purchase_id, operations.c.amount_minor, operations.c.currency,
        operations.c.rule_version, operations.c.occurred_at, operations.c.recorded_at,
    )
    # A merge moves a person's points between their own two accounts, across brands: it is
    # recorded under one origin partner, but it is not that partner's business.
    .where(operations.c.member_id.in_(bindparam("members", expanding=True)),
           operations.c.partner_id == bindparam("partner_id"), operations.c.kind != "merge")
    .order_by(operations.c.id.desc())
    .limit(bindparam("limit"))
)
_HISTORY_AFTER = _HISTORY.where(operations.c.id < bindparam("after"))


def _wallet_changes(conn: Connection, member_ids: list[str],
                    operation_ids: list[str]) -> dict[str, int]:
    """Net points into the wallet of the member (or of an account since merged into it) per
    operation, bounded by one page of ids."""
    if not operation_ids:
        return {}
    wallets = (select(accounts.c.id)
               .where(accounts.c.member_id.in_(member_ids),
                      accounts.c.kind == AccountKind.WALLET.value))
    net = func.sum(case((transfers.c.credit_account_id.in_(wallets), transfers.c.amount),
                        else_=-transfers.c.amount))
    rows = conn.execute(
        select(transfers.c.operation_id, net)
        .where(transfers.c.operation_id.in_(operation_ids),
               or_(transfers.c.credit_account_id.in_(wallets),
                   transfers.c.debit_account_id.in_(wallets)))
        .group_by(transfers.c.operation_id)).all()
    return {str(op): int(points) for op, points in rows}


def encode_cursor(operation_id: str) -> str:
    return base64.urlsafe_b64encode(f"op:{operation_id}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("after is not a cursor this API issued", field="after") from None
    if not text.startswith("op:"):
        raise InvalidInput("after is not a cursor this API issued", field="after")
    return text[3:]
