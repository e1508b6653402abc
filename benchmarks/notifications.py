"""Notification jobs at scale (decision 031), SQLite: ``python -m benchmarks.notifications
[members]``. Seeds ``members`` members (a birth date each, spread over the year) and as many lots
(expiring over the next 365 days), then times ``gateway notify expiring`` (30 days, then 7) and
``gateway notify birthdays`` on them, twice each (the second run must tell nobody: idempotent),
and the cost the expiring job's index (``ix_lots_expires_at``) adds to a lot insert, the one
thing it puts on the earn's path."""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gateway.core.clock import FixedClock
from gateway.db import migrate
from gateway.db.engine import make_engine
from gateway.notifications import jobs

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def seed(path: Path, n: int) -> None:
    rng = random.Random(13)
    raw = sqlite3.connect(path)  # foreign keys off: lots without their operations
    stamp = NOW.replace(tzinfo=None).isoformat(sep=" ")
    raw.executemany(
        "INSERT INTO members (id, created_at, status, birth_date) VALUES (?, ?, 'active', ?)",
        ((f"m{i:08d}", stamp, (date(1990, 1, 1) + timedelta(days=rng.randrange(365))).isoformat())
         for i in range(n)))
    raw.executemany(
        "INSERT INTO consents (member_id, partner_id, purpose, granted, at, via) "
        "VALUES (?, NULL, 'coalition_marketing', 1, ?, 'app')",
        ((f"m{i:08d}", stamp) for i in range(0, n, 2)))  # half consent to marketing
    raw.executemany(
        "INSERT INTO lots (member_id, origin_partner_id, operation_id, points, remaining, "
        "earned_at, available_at, expires_at, pending) VALUES (?, 'grocery', 'op', 10, 10, ?, ?, "
        "?, 0)",
        ((f"m{rng.randrange(n):08d}", stamp, stamp,
          (NOW + timedelta(seconds=rng.randrange(365 * 86400))).replace(tzinfo=None)
          .isoformat(sep=" ")) for _ in range(n)))
    raw.commit()
    raw.close()


def timed(label: str, run: Callable[[], object]) -> None:
    started = time.perf_counter()
    done = run()
    print(f"{label:<34} {time.perf_counter() - started:8.2f} s  {done}", flush=True)


def index_cost(rows: int = 200_000, *, in_order: bool) -> None:
    """µs per lot insert with the lots table's indexes, without and with ix_lots_expires_at.
    ``in_order``: expiries rise with the inserts (each earn's lot expires a fixed time after
    it, the real shape: the index grows at its right edge); else random (a worst case)."""
    results = []
    for extra in (False, True):
        raw = sqlite3.connect(":memory:")
        raw.execute("CREATE TABLE lots (id INTEGER PRIMARY KEY, member_id TEXT, operation_id "
                    "TEXT, points INT, remaining INT, expires_at TEXT, merged_from INT)")
        raw.execute("CREATE INDEX a ON lots (member_id, expires_at)")
        raw.execute("CREATE INDEX b ON lots (operation_id)")
        raw.execute("CREATE INDEX c ON lots (merged_from)")
        if extra:
            raw.execute("CREATE INDEX d ON lots (expires_at, id)")
        rng = random.Random(1)
        values = [(f"m{rng.randrange(10**6):08d}", f"op{i}", 10, 10,
                   (NOW + timedelta(seconds=rng.randrange(365 * 86400))).isoformat(), None)
                  for i in range(rows)]
        if in_order:
            values.sort(key=lambda v: str(v[4]))
        started = time.perf_counter()
        for i in range(0, rows, 100):  # 100 inserts a transaction, one at a time
            for v in values[i:i + 100]:
                raw.execute("INSERT INTO lots (member_id, operation_id, points, remaining, "
                            "expires_at, merged_from) VALUES (?, ?, ?, ?, ?, ?)", v)
            raw.commit()
        results.append((time.perf_counter() - started) / rows * 1e6)
        raw.close()
    shape = "rising expiries" if in_order else "random expiries"
    print(f"lot insert ({shape}): {results[0]:.2f} µs without, {results[1]:.2f} µs with "
          f"ix_lots_expires_at (+{results[1] - results[0]:.2f} µs)")


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        started = time.perf_counter()
        seed(path, n)
        print(f"seeded {n} members, {n} lots in {time.perf_counter() - started:.1f} s")
        clock = FixedClock(NOW)
        for days in (30, 7):
            for attempt in ("first", "again"):
                timed(f"expiring {days} days ({attempt})",
                      lambda days=days: jobs.expiring(engine, clock, days))
        for attempt in ("first", "again"):
            timed(f"birthdays ({attempt})", lambda: jobs.birthdays(engine, clock))
        engine.dispose()
    for in_order in (True, False):
        index_cost(in_order=in_order)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
