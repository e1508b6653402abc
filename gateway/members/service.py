"""Enrol and link customers, and read a member as one partner sees them (DESIGN §6).

A partner addresses members by its own customer ids only; every read here starts from the
partner's link, so another partner's customers, operations and holds simply do not exist
for it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from gateway.core.clock import Clock
from gateway.core.errors import AlreadyLinked, InvalidInput, UnknownMember
from gateway.core.ids import new_id
from gateway.db.tables import operations
from gateway.db.uow import UnitOfWork
from gateway.ledger.chart import AccountKind
from gateway.ledger.model import Balance
from gateway.ledger.repository import LedgerRepository
from gateway.members.repository import MemberRepository

MAX_CUSTOMER_ID = 128
EXPIRING_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Membership:
    member_id: str
    customer_id: str
    partner_id: str
    linked_at: datetime
    created: bool


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


@dataclass(frozen=True, slots=True)
class OperationPage:
    items: list[OperationView]
    has_next: bool
    end_cursor: str | None


def _check_customer_id(customer_id: str) -> None:
    if not customer_id.strip() or len(customer_id) > MAX_CUSTOMER_ID:
        raise InvalidInput(
            f"customerId must be 1 to {MAX_CUSTOMER_ID} characters, not blank", field="customerId"
        )


def enrol_customer(engine: Engine, clock: Clock, partner_id: str, customer_id: str) -> Membership:
    """Create a member with an empty wallet, linked to this partner's customer. Enrolling a
    customer that is already linked returns that membership (``created`` false): retries are
    safe without a key."""
    _check_customer_id(customer_id)
    with UnitOfWork(engine) as uow:
        repo, now = MemberRepository(uow.conn), clock.now()
        existing = repo.member_for_customer(partner_id, customer_id)
        if existing is not None:
            linked_at = repo.linked_at(partner_id, customer_id)
            assert linked_at is not None
            return Membership(existing, customer_id, partner_id, linked_at, created=False)
        member_id = new_id("mem")
        repo.create(member_id, now)
        repo.link(partner_id, customer_id, member_id, now)
        LedgerRepository(uow.conn).member_accounts(member_id)
        uow.commit()
        return Membership(member_id, customer_id, partner_id, now, created=True)


def link_customer(
    engine: Engine, clock: Clock, partner_id: str, customer_id: str, member_id: str
) -> Membership:
    """Partner-asserted link of this partner's customer to an existing coalition member."""
    _check_customer_id(customer_id)
    with UnitOfWork(engine) as uow:
        repo, now = MemberRepository(uow.conn), clock.now()
        if not repo.exists(member_id):
            raise UnknownMember(f"no coalition member {member_id!r}", field="memberId")
        current = repo.member_for_customer(partner_id, customer_id)
        if current == member_id:
            linked_at = repo.linked_at(partner_id, customer_id)
            assert linked_at is not None
            return Membership(member_id, customer_id, partner_id, linked_at, created=False)
        if current is not None:
            raise AlreadyLinked(
                f"customer {customer_id!r} is linked to another member", field="customerId"
            )
        if repo.customer_for_member(partner_id, member_id) is not None:
            raise AlreadyLinked(
                "this member is already linked at this partner under another customer id",
                field="memberId",
            )
        repo.link(partner_id, customer_id, member_id, now)
        uow.commit()
        return Membership(member_id, customer_id, partner_id, now, created=True)


def find_membership(engine: Engine, partner_id: str, customer_id: str) -> Membership | None:
    with UnitOfWork(engine, write=False) as uow:
        repo = MemberRepository(uow.conn)
        member_id = repo.member_for_customer(partner_id, customer_id)
        linked_at = repo.linked_at(partner_id, customer_id)
        if member_id is None or linked_at is None:
            return None
        return Membership(member_id, customer_id, partner_id, linked_at, created=False)


def member_balance(engine: Engine, clock: Clock, member_id: str) -> Balance:
    with UnitOfWork(engine, write=False) as uow:
        ledger, now = LedgerRepository(uow.conn), clock.now()
        balances = ledger.member_balances(member_id)
        expiring = ledger.expiring_points(member_id, now, now + EXPIRING_WINDOW)
        return Balance(
            available=balances[AccountKind.WALLET], held=balances[AccountKind.HELD],
            pending=balances[AccountKind.PENDING], debt=-balances[AccountKind.DEBT],
            expiring_soon=expiring, expiring_before=now + EXPIRING_WINDOW,
        )


def member_history(
    engine: Engine, partner_id: str, member_id: str, first: int, after: str | None
) -> OperationPage:
    """The member's operations at this partner only, newest first, keyset-paginated."""
    query = (
        select(
            operations.c.id, operations.c.kind, operations.c.points, operations.c.channel,
            operations.c.purchase_id, operations.c.amount_minor, operations.c.currency,
            operations.c.rule_version, operations.c.occurred_at, operations.c.recorded_at,
        )
        .where(operations.c.member_id == member_id, operations.c.partner_id == partner_id)
        .order_by(operations.c.id.desc())
        .limit(first + 1)
    )
    if after is not None:
        query = query.where(operations.c.id < decode_cursor(after))
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(query).all()
    items = [OperationView(**row._asdict()) for row in rows[:first]]
    end = encode_cursor(items[-1].id) if items else None
    return OperationPage(items, has_next=len(rows) > first, end_cursor=end)


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
