"""SQL for the ledger: accounts, transfers and operations, as lean Core statements (lots have
their own, ``gateway.ledger.lot_repository``; holds too, ``gateway.ledger.hold_repository``).

This is the write path's budget (DESIGN §11): each posting is a handful of prepared Core
statements on one connection, no ORM session. Nothing here commits.

Every statement of the hot path is built once, at import, with bound parameters (the ``_SQL``
constants below): building a Core statement per call cost ~60 µs each, about 1.5 ms per earn
(issue 11); a prebuilt one is compiled once per engine and only executed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, bindparam, exists, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import BindParameter

from gateway.db.tables import accounts, holds, lots, operations, transfers
from gateway.ledger.chart import (
    MEMBER_KINDS,
    STORED_BALANCE_KINDS,
    AccountKind,
    coalition_account,
    member_account,
    partner_account,
)
from gateway.ledger.lot_repository import housekeeping_due


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    code: str
    kind: AccountKind

    @property
    def stored(self) -> bool:
        return self.kind in STORED_BALANCE_KINDS


@dataclass(frozen=True, slots=True)
class OperationRow:
    id: str
    partner_id: str
    member_id: str | None
    kind: str
    request_hash: str | None
    purchase_id: str | None
    amount_minor: int | None
    points: int
    result: str
    recorded_at: datetime
    parent_id: str | None = None


# Partner and coalition account ids never change once created, so they are cached per engine
# (one database), for the life of the engine; two in-memory SQLite databases never share one.
_ACCOUNT_CACHES: WeakKeyDictionary[Engine, dict[str, Account]] = WeakKeyDictionary()


class LedgerRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._account_cache = _ACCOUNT_CACHES.setdefault(conn.engine, {})

    # --- accounts ---------------------------------------------------------------------------
    def account(
        self,
        code: str,
        kind: AccountKind,
        *,
        member_id: str | None = None,
        partner_id: str | None = None,
    ) -> Account:
        key = code
        cached = self._account_cache.get(key)
        if cached is not None:
            return cached
        row = self.conn.execute(_ACCOUNT_BY_CODE, {"code": code}).first()
        if row is None:
            values = {"code": code, "kind": str(kind), "member_id": member_id,
                      "partner_id": partner_id, "balance": 0}
            self.conn.execute(self._insert_ignore(accounts, values, ["code"]))
            row = self.conn.execute(_ACCOUNT_BY_CODE, {"code": code}).one()
        found = Account(id=int(row[0]), code=code, kind=kind)
        if kind not in STORED_BALANCE_KINDS:  # member accounts may be rolled back with a member
            self._account_cache[key] = found
        return found

    def member_accounts(self, member_id: str) -> dict[AccountKind, Account]:
        return self.member_accounts_and_balances(member_id)[0]

    def member_accounts_and_balances(
        self, member_id: str
    ) -> tuple[dict[AccountKind, Account], dict[AccountKind, int]]:
        """The member's four accounts and their stored balances, in one statement (enrolment
        creates them all; a missing one is created, with balance 0). Four SELECTs here were
        5 % of an earn's CPU; accounts and balances in two, another statement per command."""
        return self.member_accounts_and_balances_later(member_id)()

    def member_accounts_and_balances_later(
        self, member_id: str
    ) -> Callable[[], tuple[dict[AccountKind, Account], dict[AccountKind, int]]]:
        """:meth:`member_accounts_and_balances`, its statement sent now and its answer read
        when called: on PostgreSQL the statement then travels with the next round trip
        (``gateway.db.pgfast``); elsewhere it has run already."""
        result = self.conn.execute(
            _MEMBER_ACCOUNTS, {"codes": [member_account(member_id, k) for k in MEMBER_KINDS]})
        return lambda: self._accounts_and_balances(member_id, result.all())

    def _accounts_and_balances(
        self, member_id: str, rows: Sequence[Any]
    ) -> tuple[dict[AccountKind, Account], dict[AccountKind, int]]:
        found = {AccountKind(kind): (Account(int(id_), code, AccountKind(kind)), int(balance))
                 for id_, code, kind, balance in rows}
        accounts_of: dict[AccountKind, Account] = {}
        balances: dict[AccountKind, int] = {}
        for kind in MEMBER_KINDS:
            account, balance = found.get(kind) or (
                self.account(member_account(member_id, kind), kind, member_id=member_id), 0)
            accounts_of[kind] = account
            balances[kind] = balance
        return accounts_of, balances

    def partner_account(self, partner_id: str, kind: AccountKind) -> Account:
        return self.account(partner_account(partner_id, kind), kind, partner_id=partner_id)

    def coalition_account(self, kind: AccountKind) -> Account:
        return self.account(coalition_account(kind), kind)

    def lock_member(self, member_id: str) -> None:
        """Serialise writers on one member. SQLite's BEGIN IMMEDIATE already did; PostgreSQL
        takes a row lock on the wallet, so concurrent redeems queue instead of overdrawing."""
        if self.conn.dialect.name == "sqlite":
            return
        self.conn.execute(_LOCK_ACCOUNT, {"code": member_account(member_id, AccountKind.WALLET)})

    # On PostgreSQL the write paths lock in one order, always: idempotency key, purchase,
    # member (docs/decisions/005-postgresql-write-paths.md). SQLite's BEGIN IMMEDIATE has
    # serialised the whole transaction already, so there each lock is a no-op.
    def lock_key(self, partner_id: str, key: str) -> None:
        """Serialise requests with one idempotency key, across processes: a duplicate waits for
        the first to commit, then finds its operation and replays it, instead of running the
        command's checks against the first one's effects (which would refuse, not replay)."""
        self._advisory_lock(f"key:{partner_id}:{key}")

    def lock_purchase(self, partner_id: str, purchase_id: str) -> None:
        """Serialise the writers of one partner's purchase (earn once, cumulative returns): the
        purchase has no row to lock, and two earns of it may name two members."""
        self._advisory_lock(f"purchase:{partner_id}:{purchase_id}")

    def _advisory_lock(self, name: str) -> None:
        if self.conn.dialect.name == "sqlite":
            return
        # Transaction-scoped: released by COMMIT or ROLLBACK, never leaked by a crash. A 64-bit
        # hash of the name; a collision only makes two unrelated requests queue.
        self.conn.execute(_ADVISORY_LOCK, {"name": name})

    def member_balances(self, member_id: str) -> dict[AccountKind, int]:
        # By the unique code, like member_accounts (ix_accounts_member serves batch reads).
        rows = self.conn.execute(
            _MEMBER_ACCOUNTS, {"codes": [member_account(member_id, k) for k in MEMBER_KINDS]}
        ).all()
        found = {AccountKind(kind): int(balance) for _, _, kind, balance in rows}
        return {kind: found.get(kind, 0) for kind in MEMBER_KINDS}

    # --- postings ---------------------------------------------------------------------------
    def post(
        self, operation_id: str, debit: Account, credit: Account, amount: int, at: datetime
    ) -> None:
        """One transfer; stored balances move in the same transaction (DESIGN §11)."""
        if amount <= 0:
            raise ValueError(f"a transfer moves a positive amount, got {amount}")
        self.conn.execute(
            _INSERT_TRANSFER,
            {"operation_id": operation_id, "debit_account_id": debit.id,
             "credit_account_id": credit.id, "amount": amount, "recorded_at": at},
        )
        if debit.stored:
            self._move_balance(debit.id, -amount)
        if credit.stored:
            self._move_balance(credit.id, amount)

    def post_all(self, operation_id: str, moves: Sequence[tuple[Account, Account, int]],
                 at: datetime) -> None:
        """Several transfers of one operation, in order: one INSERT for all of them, and on
        SQLite one UPDATE for every stored balance they move (an earn with campaigns posts one
        transfer per funder; a statement each was a third of what campaigns added to an earn).
        PostgreSQL keeps one UPDATE per account in posting order: concurrent operations then
        lock shared accounts in the same order (its statements are pipelined, no round trip
        each)."""
        if len(moves) == 1:
            self.post(operation_id, *moves[0], at)
            return
        if not moves:
            return
        rows = []
        deltas: dict[int, int] = {}
        for debit, credit, amount in moves:
            if amount <= 0:
                raise ValueError(f"a transfer moves a positive amount, got {amount}")
            rows.append((debit.id, credit.id, amount))
            if debit.stored:
                deltas[debit.id] = deltas.get(debit.id, 0) - amount
            if credit.stored:
                deltas[credit.id] = deltas.get(credit.id, 0) + amount
        postgres = self.conn.dialect.name == "postgresql"
        self.conn.execute(_INSERT_TRANSFERS_PG if postgres else _INSERT_TRANSFERS_SQLITE, {
            "operation_id": operation_id, "recorded_at": at,
            "rows": json.dumps(rows, separators=(",", ":"))})
        moved = [(account, delta) for account, delta in deltas.items() if delta]
        if postgres or len(moved) == 1:
            for account, delta in moved:
                self._move_balance(account, delta)
        elif moved:
            self.conn.execute(_MOVE_BALANCES_SQLITE,
                              {"deltas": json.dumps(moved, separators=(",", ":"))})

    def _move_balance(self, account_id: int, delta: int) -> None:
        self.conn.execute(_MOVE_BALANCE, {"account_id": account_id, "delta": delta})

    # --- operations -------------------------------------------------------------------------
    def insert_operation(self, values: dict[str, Any]) -> None:
        self.conn.execute(_INSERT_OPERATION, values)

    def find_by_key(self, partner_id: str, key: str) -> OperationRow | None:
        row = self.conn.execute(_FIND_BY_KEY, {"partner_id": partner_id, "key": key}).first()
        return None if row is None else OperationRow(**row._asdict())

    def operations_by_id(self, ids: Sequence[str]) -> dict[str, OperationRow]:
        """Those of ``ids`` that exist, by id (primary key)."""
        return {row.id: OperationRow(**row._asdict())
                for row in self.conn.execute(_BY_ID, {"ids": list(ids)})}

    def rule_of(self, operation_id: str) -> tuple[str, int] | None:
        """The (partner, version) of the rule an operation was made under, if it names one."""
        row = self.conn.execute(_RULE_OF, {"id": operation_id}).first()
        if row is None or row.rule_version is None:
            return None
        return str(row.rule_partner_id), int(row.rule_version)

    def purchase_operations(
        self, partner_id: str, purchase_id: str, kinds: Iterable[str]
    ) -> list[OperationRow]:
        return self.purchase_operations_later(partner_id, purchase_id, kinds)()

    def purchase_operations_later(
        self, partner_id: str, purchase_id: str, kinds: Iterable[str]
    ) -> Callable[[], list[OperationRow]]:
        """:meth:`purchase_operations`, answered when called (see
        :meth:`member_accounts_and_balances_later`)."""
        result = self.conn.execute(
            _PURCHASE_OPERATIONS,
            {"partner_id": partner_id, "purchase_id": purchase_id, "kinds": list(kinds)},
        )
        return lambda: [OperationRow(**row._asdict()) for row in result.all()]

    def points_earned_between(
        self, member_id: str, partner_id: str, start: datetime, end: datetime
    ) -> int:
        return self.points_earned_between_later(member_id, partner_id, start, end)()

    def points_earned_between_later(
        self, member_id: str, partner_id: str, start: datetime, end: datetime
    ) -> Callable[[], int]:
        """:meth:`points_earned_between`, answered when called (see
        :meth:`member_accounts_and_balances_later`)."""
        result = self.conn.execute(
            _EARNED_BETWEEN,
            {"member_id": member_id, "partner_id": partner_id, "start": start, "end": end,
             "issued": partner_account(partner_id, AccountKind.ISSUED)},
        )
        return lambda: int(result.scalar_one())

    # --- housekeeping ---------------------------------------------------------------------
    def anything_due(self, member_id: str, at: datetime) -> bool:
        """Whether housekeeping has anything to do for the member (a matured pending lot, an
        expired lot with points left, a lapsed hold): one statement for the common 'no'."""
        return self.anything_due_later(member_id, at)()

    def anything_due_later(self, member_id: str, at: datetime) -> Callable[[], bool]:
        """:meth:`anything_due`, answered when called (see
        :meth:`member_accounts_and_balances_later`)."""
        result = self.conn.execute(_ANYTHING_DUE, {"member_id": member_id, "at": at})
        return lambda: bool(result.scalar_one())

    # --- helpers ----------------------------------------------------------------------------
    def _insert_ignore(self, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
        if self.conn.dialect.name == "postgresql":
            return postgresql.insert(table).values(**values).on_conflict_do_nothing(
                index_elements=keys
            )
        return sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)


_OPERATION_COLUMNS = (
    operations.c.id,
    operations.c.partner_id,
    operations.c.member_id,
    operations.c.kind,
    operations.c.request_hash,
    operations.c.purchase_id,
    operations.c.amount_minor,
    operations.c.points,
    operations.c.result,
    operations.c.recorded_at,
    operations.c.parent_id,
)



# --- the hot path's statements, built once (see the module docstring) ----------------------------
_ACCOUNT_BY_CODE = select(accounts.c.id).where(accounts.c.code == bindparam("code"))
_MEMBER_ACCOUNTS = (
    select(accounts.c.id, accounts.c.code, accounts.c.kind, accounts.c.balance)
    .where(accounts.c.code.in_(bindparam("codes", expanding=True))))
_LOCK_ACCOUNT = (select(accounts.c.id).where(accounts.c.code == bindparam("code"))
                 .with_for_update())
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("name"), 0)))
_INSERT_TRANSFER = insert(transfers)
_MOVE_BALANCE = (update(accounts).where(accounts.c.id == bindparam("account_id"))
                 .values(balance=accounts.c.balance + bindparam("delta")))
_INSERT_OPERATION = insert(operations)
_TRANSFER_BINDS: tuple[BindParameter[Any], ...] = (
    bindparam("operation_id"), bindparam("rows"),
    bindparam("recorded_at", type_=transfers.c.recorded_at.type))
_INSERT_TRANSFERS_SQLITE = text(
    "INSERT INTO transfers (operation_id, debit_account_id, credit_account_id, amount, "
    "recorded_at) SELECT :operation_id, json_extract(value, '$[0]'), "
    "json_extract(value, '$[1]'), json_extract(value, '$[2]'), :recorded_at "
    "FROM json_each(:rows) ORDER BY key").bindparams(*_TRANSFER_BINDS)
_INSERT_TRANSFERS_PG = text(
    "INSERT INTO transfers (operation_id, debit_account_id, credit_account_id, amount, "
    "recorded_at) SELECT :operation_id, CAST(r ->> 0 AS integer), CAST(r ->> 1 AS integer), "
    "CAST(r ->> 2 AS bigint), :recorded_at "
    "FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS t(r, n) ORDER BY n"
    ).bindparams(*_TRANSFER_BINDS)
# Each account once (the deltas are summed per account): a correlated lookup, no UPDATE FROM.
_MOVE_BALANCES_SQLITE = text(
    "UPDATE accounts SET balance = balance + (SELECT json_extract(value, '$[1]') "
    "FROM json_each(:deltas) WHERE json_extract(value, '$[0]') = accounts.id) "
    "WHERE id IN (SELECT json_extract(value, '$[0]') FROM json_each(:deltas))")
_BY_ID = select(*_OPERATION_COLUMNS).where(
    operations.c.id.in_(bindparam("ids", expanding=True)))  # primary key
_RULE_OF = select(operations.c.rule_partner_id, operations.c.rule_version).where(
    operations.c.id == bindparam("id"))  # primary key
_FIND_BY_KEY = select(*_OPERATION_COLUMNS).where(
    operations.c.partner_id == bindparam("partner_id"),
    operations.c.idempotency_key == bindparam("key"))
_PURCHASE_OPERATIONS = (
    select(*_OPERATION_COLUMNS)
    .where(operations.c.partner_id == bindparam("partner_id"),
           operations.c.purchase_id == bindparam("purchase_id"),
           operations.c.kind.in_(bindparam("kinds", expanding=True)))
    .order_by(operations.c.recorded_at, operations.c.id))
# The partner's own points in the member's earns there in [start, end): the transfers out of
# its issued account (a campaign's bonus comes from its funder's account, so it never uses up
# the partner's daily cap). ix_operations_daily_cap finds the member's earns there that day,
# ix_transfers_operation their few transfers; the issued account by its unique code.
_EARNED_BETWEEN = (
    select(func.coalesce(func.sum(transfers.c.amount), 0))
    .select_from(operations.join(transfers, transfers.c.operation_id == operations.c.id))
    .where(
        operations.c.member_id == bindparam("member_id"),
        operations.c.partner_id == bindparam("partner_id"),
        operations.c.kind == "earn",
        operations.c.recorded_at >= bindparam("start", type_=operations.c.recorded_at.type),
        operations.c.recorded_at < bindparam("end", type_=operations.c.recorded_at.type),
        # "+ 0": the issued account is the partner's, debited by every earn it ever made, so
        # its index (ix_transfers_debit) must never drive this join; each earn's own transfers
        # are found by ix_transfers_operation and only then filtered by account. Without
        # statistics (a new SQLite file, never ANALYZEd) SQLite otherwise chose the account's
        # index, and a member's second earn of the day walked the partner's whole history:
        # the campaigns benchmark lost half its throughput per 10 s run on one database.
        (transfers.c.debit_account_id + 0) == select(accounts.c.id).where(
            accounts.c.code == bindparam("issued")).scalar_subquery()))
_LOT_DUE, _HOLD_DUE = housekeeping_due("at")
_ANYTHING_DUE = select(
    exists().where(lots.c.member_id == bindparam("member_id"), _LOT_DUE)
    | exists().where(holds.c.member_id == bindparam("member_id"), _HOLD_DUE))
