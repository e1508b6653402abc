"""What a funding charge adds to an awarding transaction, as a ratio against the single-row
UPDATE every earn already makes (the member wallet's stored balance), same run, same database.

Inside one write transaction on the ledger's write path (SQLite: the raw driver; PostgreSQL
with ``--database-url``: the plain connection), best of three runs of ``--n`` statements each:

* baseline: ``UPDATE accounts SET balance = balance + 1`` on one member account
* ``charge`` on a funder with terms (the conditional UPDATE … RETURNING)
* ``charge`` on a funder without terms (the UPDATE matches nothing, then one read)
* ``release``

    .venv/bin/python -m benchmarks.funding [--n 5000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, update

from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.db.fast import fast
from gateway.db.uow import UnitOfWork
from gateway.ledger.enrolment import enrol_customer
from gateway.promotions import funding
from gateway.settings import Settings
from gateway.settlement import exposure

NOW = datetime(2026, 1, 10, 10, tzinfo=UTC)


def timed(conn: Connection, n: int, step: Callable[[Connection], object]) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(n):
            step(conn)
        best = min(best, time.perf_counter() - began)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'gateway.db'}"
        clock = FixedClock(NOW)
        gw = build(Settings(database_url=url, issuer="https://bench.test"), clock=clock)
        s = gw.services
        member = enrol_customer(s.engine, clock, "grocery", "bench-1").member_id
        exposure.set_terms(s.engine, clock, "grocery", mode="credit", policy="refuse",
                           limit_points=10**12, actor="bench")
        bump = (update(t.accounts).where(t.accounts.c.code == f"member:{member}:wallet")
                .values(balance=t.accounts.c.balance + 1))
        now = clock.now()
        with UnitOfWork(s.engine, write=True) as uow:
            conn = fast(uow.conn)
            base = timed(conn, args.n, lambda c: c.execute(bump))
            limited = timed(conn, args.n, lambda c: funding.charge(c, "grocery", 1, now))
            unlimited = timed(conn, args.n, lambda c: funding.charge(c, "fuel", 1, now))
            released = timed(conn, args.n, lambda c: funding.release(c, "grocery", 1, now))
            # Rolled back: a benchmark leaves nothing behind.
        print(f"backend {s.engine.dialect.name}, {args.n} statements, best of 3, µs each:")
        for name, value in (("wallet balance UPDATE (baseline)", base),
                            ("charge, funder with terms", limited),
                            ("charge, funder without terms", unlimited),
                            ("release", released)):
            print(f"  {name:34s} {value:8.1f} µs  {value / base:5.2f}x")
        s.engine.dispose()


if __name__ == "__main__":
    main()
