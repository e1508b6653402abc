"""Put a benchmark's starting state into the ledger's own tables, fast and consistent.

Members are enrolled and points earned by bulk INSERTs of exactly the rows the services write
(``members``, ``linked_accounts``, the four member accounts; for each earn an ``operations`` row,
its one transfer from the partner's ``issued`` account to the wallet, and its lot), then each
wallet's stored balance is set to the sum of its transfers. ``verify`` is clean afterwards, which
the benchmarks check. Going through the ledger service instead would take an hour for 1M
transfers; the rows are the same."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, bindparam, func, insert, select, update

from gateway.api.registering import register_documents
from gateway.app import Gateway, build
from gateway.db.documents import EVERY_PARTNER
from gateway.db.tables import accounts, linked_accounts, lots, members, operations, transfers
from gateway.ledger.chart import MEMBER_KINDS, AccountKind, member_account, partner_account
from gateway.settings import Settings

PARTNER = "grocery"
CHUNK = 20_000


def prepare(database_url: str, catalog_dir: Path | None = None) -> Gateway:
    """Create the schema, the catalog's partners and their accounts (as the server would);
    ``catalog_dir``: another partner catalog than the shipped one (the server must get it too)."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    from benchmarks.serve import BENCH_ISSUER

    settings = Settings(database_url=database_url, issuer=BENCH_ISSUER)
    if catalog_dir is not None:
        settings = replace(settings, catalog_dir=catalog_dir)
    return build(settings)


def member_id(n: int) -> str:
    return f"mem-bench-{n:07d}"


def enrol(engine: Engine, count: int, prefix: str, *, start: int = 0,
          partner: str = PARTNER, first_customer: int | None = None) -> list[int]:
    """``count`` members (``start`` on) linked at ``partner`` (grocery) as customers
    ``{prefix}{n}``, n from ``first_customer`` (default ``start``); returns their wallet account
    ids in order."""
    customer = start if first_customer is None else first_customer
    now = datetime.now(UTC)
    ids = [member_id(n) for n in range(start, start + count)]
    with engine.begin() as conn:
        for base in range(0, count, CHUNK):
            part = ids[base:base + CHUNK]
            conn.execute(insert(members), [{"id": m, "created_at": now} for m in part])
            conn.execute(insert(linked_accounts), [
                {"partner_id": partner, "customer_id": f"{prefix}{customer + base + i}",
                 "member_id": m, "linked_at": now} for i, m in enumerate(part)])
            conn.execute(insert(accounts), [
                {"code": member_account(m, kind), "kind": str(kind), "member_id": m,
                 "partner_id": None, "balance": 0} for m in part for kind in MEMBER_KINDS])
        # Read back a chunk at a time: one IN list of a million ids is past SQLite's limit on
        # bound variables (and slow to plan everywhere).
        wallets: dict[str, int] = {}
        for base in range(0, count, CHUNK):
            wallets.update(conn.execute(
                select(accounts.c.member_id, accounts.c.id)
                .where(accounts.c.kind == str(AccountKind.WALLET),
                       accounts.c.member_id.in_(ids[base:base + CHUNK]))).all())
    return [int(wallets[m]) for m in ids]


def earn_history(
    engine: Engine, wallets: Sequence[int], first_member: int, transfers_total: int,
    *, points: Callable[[random.Random], int] = lambda rng: rng.randint(1, 400),
    each: bool = False, tag: str = "h",
    report: Callable[[int, int], None] = lambda done, total: None,
) -> None:
    """``transfers_total`` earns spread at random over the members (``each``: round robin),
    recorded over the past 300 days, each expiring 365 days after it was earned (so none has
    expired yet). ``tag`` keeps operation ids and keys unique between calls on one database."""
    rng = random.Random(5)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.connect() as conn:
        issued = conn.execute(select(accounts.c.id).where(
            accounts.c.code == partner_account(PARTNER, AccountKind.ISSUED))).scalar_one()
    totals = [0] * len(wallets)
    for base in range(0, transfers_total, CHUNK):
        ops, moves, new_lots = [], [], []
        for n in range(base, min(base + CHUNK, transfers_total)):
            i = n % len(wallets) if each else rng.randrange(len(wallets))
            earned = points(rng)
            totals[i] += earned
            at = now - timedelta(seconds=rng.randrange(300 * 86400))
            op = f"op-bench-{tag}-{n:09d}"
            mem = member_id(first_member + i)
            ops.append({
                "id": op, "partner_id": PARTNER, "member_id": mem, "kind": "earn",
                "idempotency_key": f"seed-{tag}-{n}", "request_hash": None, "channel": "store",
                "purchase_id": f"seed-{tag}-{n}", "parent_id": None, "hold_id": None,
                "rule_partner_id": PARTNER, "rule_version": 1, "amount_minor": earned * 1000,
                "currency": "UAH", "points": earned, "occurred_at": at, "recorded_at": at,
                "result": json.dumps({"seeded": True, "points": earned})})
            moves.append({"operation_id": op, "debit_account_id": issued,
                          "credit_account_id": wallets[i], "amount": earned, "recorded_at": at})
            new_lots.append({"member_id": mem, "origin_partner_id": PARTNER, "operation_id": op,
                             "points": earned, "remaining": earned, "earned_at": at,
                             "available_at": at, "expires_at": at + timedelta(days=365),
                             "pending": 0})
        with engine.begin() as conn:
            conn.execute(insert(operations), ops)
            conn.execute(insert(transfers), moves)
            conn.execute(insert(lots), new_lots)
        report(min(base + CHUNK, transfers_total), transfers_total)
    with engine.begin() as conn:
        conn.execute(
            update(accounts).where(accounts.c.id == bindparam("wallet"))
            .values(balance=accounts.c.balance + bindparam("delta")),
            [{"wallet": w, "delta": t} for w, t in zip(wallets, totals, strict=True) if t])


# --- bulk: a million members in about a minute ------------------------------------------------
BULK_CHUNK = 100_000


def bulk_load(engine: Engine, members_total: int, operations_total: int, *, prefix: str = "c",
              report: Callable[[str, int, int], None] = lambda what, done, total: None) -> None:
    """``members_total`` members linked at the grocery as ``{prefix}{n}`` with their four
    accounts, and ``operations_total`` earns at the grocery (round robin over the members, each
    an operation, its transfer and its lot, over the past 300 days), through the raw driver:
    ``executemany`` in one transaction, the wallets' stored balances written with them. Same
    rows as ``enrol`` + ``earn_history``; verify is clean afterwards."""
    now = datetime.now(UTC).replace(microsecond=0)
    sqlite_db = engine.dialect.name == "sqlite"

    def stamp(at: datetime) -> object:  # what SQLAlchemy's UTCDateTime would bind
        naive = at.replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite_db else naive

    def sql(table: str, columns: str) -> str:
        count = len(columns.split(","))
        marks = ", ".join(["?"] * count) if sqlite_db else ", ".join(["%s"] * count)
        return f"INSERT INTO {table} ({columns}) VALUES ({marks})"

    def points(n: int) -> int:
        return 1 + (n * 7919) % 400

    def when(n: int) -> datetime:
        return now - timedelta(seconds=(n * 104_729) % (300 * 86400))

    totals = [0] * members_total
    for n in range(operations_total):
        totals[n % members_total] += points(n)
    created = stamp(now)
    with engine.connect() as conn:
        issued = conn.execute(select(accounts.c.id).where(
            accounts.c.code == partner_account(PARTNER, AccountKind.ISSUED))).scalar_one()
        first_account = int(conn.execute(select(func.coalesce(func.max(accounts.c.id), 0)))
                            .scalar_one()) + 1
    kinds = [str(kind) for kind in MEMBER_KINDS]
    wallet_slot = kinds.index(str(AccountKind.WALLET))

    def account_id(member: int, slot: int) -> int:
        return first_account + member * len(kinds) + slot

    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite_db:
            cursor.execute("BEGIN IMMEDIATE")

        def load(what: str, table: str, columns: str, total: int,
                 rows: Callable[[int], Iterable[tuple[object, ...]]]) -> None:
            statement = sql(table, columns)
            for base in range(0, total, BULK_CHUNK):
                cursor.executemany(statement, list(rows(base)))
                report(what, min(base + BULK_CHUNK, total), total)

        def span(base: int, total: int) -> range:
            return range(base, min(base + BULK_CHUNK, total))

        load("members", "members", "id, created_at", members_total,
             lambda base: ((member_id(m), created) for m in span(base, members_total)))
        load("links", "linked_accounts", "partner_id, customer_id, member_id, linked_at",
             members_total, lambda base: ((PARTNER, f"{prefix}{m}", member_id(m), created)
                                          for m in span(base, members_total)))
        load("accounts", "accounts", "id, code, kind, member_id, partner_id, balance",
             members_total, lambda base: (
                 (account_id(m, slot), member_account(member_id(m), AccountKind(kind)), kind,
                  member_id(m), None, totals[m] if slot == wallet_slot else 0)
                 for m in span(base, members_total) for slot, kind in enumerate(kinds)))

        def op_id(n: int) -> str:
            return f"op-bulk-{n:09d}"

        load("operations", "operations",
             "id, partner_id, member_id, kind, idempotency_key, request_hash, channel, "
             "purchase_id, parent_id, hold_id, rule_partner_id, rule_version, amount_minor, "
             "currency, points, occurred_at, recorded_at, result", operations_total,
             lambda base: (
                 (op_id(n), PARTNER, member_id(n % members_total), "earn", f"bulk-{n}", None,
                  "store", f"bulk-{n}", None, None, PARTNER, 1, points(n) * 1000, "UAH",
                  points(n), stamp(when(n)), stamp(when(n)),
                  json.dumps({"seeded": True, "points": points(n)}))
                 for n in span(base, operations_total)))
        load("transfers", "transfers",
             "operation_id, debit_account_id, credit_account_id, amount, recorded_at",
             operations_total, lambda base: (
                 (op_id(n), issued, account_id(n % members_total, wallet_slot), points(n),
                  stamp(when(n))) for n in span(base, operations_total)))
        load("lots", "lots", "member_id, origin_partner_id, operation_id, points, remaining, "
             "earned_at, available_at, expires_at, pending", operations_total,
             lambda base: (
                 (member_id(n % members_total), PARTNER, op_id(n), points(n), points(n),
                  stamp(when(n)), stamp(when(n)), stamp(when(n) + timedelta(days=365)), 0)
                 for n in span(base, operations_total)))
        if not sqlite_db:  # explicit account ids: move the sequence past them
            cursor.execute("SELECT setval(pg_get_serial_sequence('accounts', 'id'), "
                           "(SELECT max(id) FROM accounts))")
        raw.commit()
    finally:
        raw.close()


def trusted_body(gw: Gateway, body: str) -> str:
    """``body`` (a request with ``query`` and ``variables``) as the same request naming its
    document by id: the document registered for every partner (any benchmark token may send
    it), the variables' placeholders (``@CUSTOMER@``, ``@KEY@``) kept for wrk to fill."""
    request = json.loads(body)
    [done] = register_documents(gw.services, [(None, request["query"])], EVERY_PARTNER,
                                actor="benchmark")
    return json.dumps({"documentId": f"sha256:{done.id}", "variables": request["variables"]})
