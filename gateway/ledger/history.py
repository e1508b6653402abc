"""History reads, beside the rules that write it: a partner's view of its own operations with
a member, and the member's own history across every brand (``viewer``), both newest first,
keyset-paginated, including operations of accounts since merged into the member.

Every read starts from the member ids (the member and those merged into it, bounded), through
an index whose leading column is that id, and returns one bounded page."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, case, func, or_, select

from gateway.core.errors import InvalidInput
from gateway.db.tables import accounts, operations, partners, transfers
from gateway.db.uow import UnitOfWork
from gateway.ledger.chart import AccountKind
from gateway.members.repository import MAX_MERGED, MemberRepository


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


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: str
    partner_id: str
    partner_name: str
    kind: str
    channel: str | None
    points: int
    occurred_at: datetime
    recorded_at: datetime
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[HistoryItem]
    has_next: bool
    end_cursor: str | None


def _merged_into(conn: Connection, member_id: str) -> list[str]:
    """The member and every member merged into it (transitively), bounded."""
    return MemberRepository(conn).with_absorbed(member_id, MAX_MERGED)


def history(engine: Engine, member_id: str, first: int, after: str | None) -> HistoryPage:
    """Operations across every brand, newest first, including those of merged accounts."""
    with UnitOfWork(engine, write=False) as uow:
        ids = _merged_into(uow.conn, member_id)
        query = (
            select(operations.c.id, operations.c.partner_id, partners.c.name, operations.c.kind,
                   operations.c.channel, operations.c.points, operations.c.occurred_at,
                   operations.c.recorded_at, operations.c.result)
            .join(partners, partners.c.id == operations.c.partner_id)
            .where(operations.c.member_id.in_(ids))
            .order_by(operations.c.id.desc()).limit(first + 1))
        if after is not None:
            query = query.where(operations.c.id < decode_cursor(after))
        rows = uow.conn.execute(query).all()
    items = [HistoryItem(str(r.id), str(r.partner_id), str(r.name), str(r.kind), r.channel,
                         int(r.points), r.occurred_at, r.recorded_at, _why(r.result))
             for r in rows[:first]]
    return HistoryPage(items, len(rows) > first,
                       encode_cursor(items[-1].id) if items else None)


def _why(result: str) -> tuple[str, ...]:
    try:
        found = json.loads(result).get("explanation")
    except (ValueError, AttributeError):
        return ()
    return tuple(str(line) for line in found) if isinstance(found, list) else ()


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
