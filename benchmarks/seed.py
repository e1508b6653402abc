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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, bindparam, insert, select, update

from gateway.app import Gateway, build
from gateway.db.tables import accounts, linked_accounts, lots, members, operations, transfers
from gateway.ledger.chart import MEMBER_KINDS, AccountKind, member_account, partner_account
from gateway.settings import Settings

PARTNER = "grocery"
CHUNK = 20_000


def prepare(database_url: str) -> Gateway:
    """Create the schema, the catalog's partners and their accounts (as the server would)."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return build(Settings(database_url=database_url))


def member_id(n: int) -> str:
    return f"mem-bench-{n:07d}"


def enrol(engine: Engine, count: int, prefix: str, *, start: int = 0) -> list[int]:
    """``count`` members linked at the grocery partner as customers ``{prefix}{n}``; returns
    their wallet account ids in order."""
    now = datetime.now(UTC)
    ids = [member_id(n) for n in range(start, start + count)]
    with engine.begin() as conn:
        for base in range(0, count, CHUNK):
            part = ids[base:base + CHUNK]
            conn.execute(insert(members), [{"id": m, "created_at": now} for m in part])
            conn.execute(insert(linked_accounts), [
                {"partner_id": PARTNER, "customer_id": f"{prefix}{start + base + i}",
                 "member_id": m, "linked_at": now} for i, m in enumerate(part)])
            conn.execute(insert(accounts), [
                {"code": member_account(m, kind), "kind": str(kind), "member_id": m,
                 "partner_id": None, "balance": 0} for m in part for kind in MEMBER_KINDS])
        wallets = dict(conn.execute(
            select(accounts.c.member_id, accounts.c.id)
            .where(accounts.c.kind == str(AccountKind.WALLET),
                   accounts.c.member_id.in_(ids))).all())
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
