"""The programme report at ten million operations (issue 13: <= 10 s on two cores, flat memory).

A fresh database (PostgreSQL: the run's throwaway server) gets ``MEMBERS`` members through
``seed.bulk_load``, then ``plan.report_operations`` operations over twelve months at four
partners (earn 60 %, redeem 25 %, return 5 %, bonus 4 %, donation 3 %, expiry 3 %; an earn
also makes its lot, part of it still remaining), seeded in a child process through the raw
driver (SQLite ``executemany``, PostgreSQL ``COPY``) with the secondary indexes of
``operations`` and ``lots`` dropped and rebuilt afterwards (one sort each instead of ten million
random index inserts), with progress on stderr. Then, best of three: ``programme_report`` for
the last six months, against a baseline of one ``SUM(points)`` over ``operations`` (one scan of
the table, the least any report over it can cost). Peak RSS is this process's high-water
mark, taken before and after the reports (the loader is a child process, so it is the
report's own).

    .venv/bin/python -m benchmarks --only reports --backend sqlite
    .venv/bin/python -m benchmarks.reports --operations 1000000 --backend sqlite
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Index, create_engine, text

from benchmarks import seed
from benchmarks.env import Backend, Plan
from benchmarks.table import Row
from gateway.app import build
from gateway.db.tables import lots, operations
from gateway.reports.programme import programme_report
from gateway.settings import Settings
from gateway.settlement.model import Period

PARTNERS = ("grocery", "electronics", "fuel", "charity")
EARNERS = ("grocery", "electronics", "fuel")
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
PERIOD = Period(datetime(2025, 7, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
MEMBERS = 100_000
CHUNK = 200_000
TARGET_S = 10.0

OPERATION_COLUMNS = ("id, partner_id, member_id, kind, idempotency_key, rule_partner_id, "
                     "rule_version, amount_minor, currency, points, occurred_at, recorded_at, "
                     "result")
LOT_COLUMNS = ("id, member_id, origin_partner_id, operation_id, points, remaining, earned_at, "
               "available_at, expires_at, pending")


def progress(what: str, done: int, total: int) -> None:
    sys.stderr.write(f"\r  {what}: {done:,}/{total:,}   ")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def rows(total: int, members: int, sqlite_db: bool) -> Any:
    """(operations, lots) in chunks, in time order. Each member starts in a random month
    (their cohort) and is active from then on, a few brands each."""
    rng = random.Random(13)
    first = [rng.random() for _ in range(members)]  # where in the year each member starts
    step = SPAN / max(total, 1)
    lot_id = 0

    def stamp(at: datetime) -> Any:
        naive = at.replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite_db else naive

    for base in range(0, total, CHUNK):
        ops: list[tuple[Any, ...]] = []
        new_lots: list[tuple[Any, ...]] = []
        for n in range(base, min(base + CHUNK, total)):
            share = n / total
            member = rng.randrange(members)
            if first[member] > share:  # not joined yet: someone who has
                member = rng.randrange(max(1, int(members * share)) or 1)
            mid = seed.member_id(member)
            at = stamp(START + n * step)
            op = f"op{n:010d}"
            roll = rng.random()
            if roll < 0.60:
                partner, kind = rng.choice(EARNERS), "earn"
                points = rng.randint(10, 400)
                ops.append((op, partner, mid, kind, f"k{n}", partner, 1, points * 1000, "UAH",
                            points, at, at, "{}"))
                lot_id += 1
                new_lots.append((lot_id, mid, partner, op, points, rng.randint(0, points), at,
                                 at, at, 0))
                continue
            if roll < 0.85:
                partner, kind, points = rng.choice(PARTNERS), "redeem", -rng.randint(1, 50)
            elif roll < 0.90:
                partner, kind, points = rng.choice(EARNERS), "return", -rng.randint(1, 40)
            elif roll < 0.94:
                partner, kind, points = rng.choice(EARNERS), "bonus", rng.randint(1, 100)
            elif roll < 0.97:
                partner, kind, points = "charity", "donate", -rng.randint(1, 30)
            else:
                partner, kind, points = rng.choice(EARNERS), "expire", -rng.randint(1, 60)
            ops.append((op, partner, mid, kind, f"k{n}", None, None, None, None, points, at,
                        at, "{}"))
        yield ops, new_lots


def _secondary(table: Any) -> list[Index]:
    return [i for i in table.indexes if i.name]


def load(database_url: str, total: int, members: int) -> None:
    """Members, then the operations with the secondary indexes dropped; rebuilt; ANALYZE."""
    engine = build(Settings(database_url=database_url)).services.engine
    seed.bulk_load(engine, members, 0, report=progress)
    sqlite_db = engine.dialect.name == "sqlite"
    indexes = _secondary(operations) + _secondary(lots)
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        if sqlite_db:  # benchmark data, rebuilt on every run: no fsync per chunk
            cursor.execute("PRAGMA synchronous=OFF")
        done = 0
        for ops, new_lots in rows(total, members, sqlite_db):
            for table, columns, data in (("operations", OPERATION_COLUMNS, ops),
                                         ("lots", LOT_COLUMNS, new_lots)):
                if sqlite_db:
                    marks = ", ".join("?" * len(columns.split(",")))
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                       data)
                else:
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in data:
                            copy.write_row(row)
            raw.commit()
            done += len(ops)
            progress("operations", done, total)
    finally:
        raw.close()
    for i, index in enumerate(indexes, 1):
        progress("indexes rebuilt", i - 1, len(indexes))
        with engine.begin() as conn:
            index.create(conn)
    progress("indexes rebuilt", len(indexes), len(indexes))
    sys.stderr.write("  analyze\n")
    with engine.connect() as conn:
        if sqlite_db:
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE")
    engine.dispose()


def scan(engine: Engine) -> float:
    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("SELECT SUM(points) FROM operations")).scalar_one()
    return time.perf_counter() - t0


def measure(database_url: str, total: int, members: int, label: str,
            *, seeded: bool = False) -> tuple[list[Row], str]:
    """Seed (unless ``seeded``: a database this script seeded before), then time the report."""
    print(f"reports, {label}, {total:,} operations, {members:,} members:", file=sys.stderr)
    t0 = time.perf_counter()
    if not seeded:
        loader = multiprocessing.get_context("spawn").Process(
            target=load, args=(database_url, total, members))
        loader.start()
        loader.join()
        if loader.exitcode != 0:
            raise SystemExit(f"loading failed ({loader.exitcode})")
    loaded_s = time.perf_counter() - t0
    print(f"  loaded in {loaded_s:.0f} s", file=sys.stderr)
    engine = create_engine(database_url)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = base = float("inf")
    report = None
    for attempt in range(3):
        t0 = time.perf_counter()
        report = programme_report(engine, PERIOD)
        best = min(best, time.perf_counter() - t0)
        base = min(base, scan(engine))
        print(f"  run {attempt + 1}: report {best:.2f} s, SUM scan {base:.2f} s",
              file=sys.stderr)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine.dispose()
    assert report is not None
    note = (f"{total:,} ops, {members:,} members, load {loaded_s:.0f} s; period "
            f"{PERIOD.start:%Y-%m}..{PERIOD.end:%Y-%m}: {report.active_members:,} active, "
            f"{report.cross_brand_members:,} cross-brand, {len(report.cohorts)} cohorts; "
            f"peak RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    table_text = (f"{'backend':<18} {'operations':>11} {'SUM scan s':>10} {'report s':>9} "
                  f"{'ratio':>6} {'target':>7} {'RSS before MB':>13} {'RSS after MB':>12}\n"
                  f"{label:<18} {total:>11,} {base:>10.2f} {best:>9.2f} {best / base:>5.2f}x "
                  f"{'<= 10 s':>7} {rss_before:>13.0f} {rss_after:>12.0f}")
    return [Row("reports", label, "programme report s", round(best, 3), round(base, 3),
                f"<= {TARGET_S:.0f} s", best <= TARGET_S, "s", note)], table_text


def run(backend: Backend, plan: Plan) -> list[Row]:
    url = backend.fresh_database("reports")
    found, table_text = measure(url, plan.report_operations, min(MEMBERS, plan.scale_big),
                                backend.label)
    print(table_text, file=sys.stderr)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=10_000_000)
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seeded", default=None, metavar="SQLITE_FILE",
                        help="time the report on a SQLite file this script seeded before "
                             "(--operations and --members as it was seeded)")
    args = parser.parse_args()
    if args.seeded:
        _, table_text = measure(f"sqlite:///{args.seeded}", args.operations, args.members,
                                "sqlite", seeded=True)
        print(table_text)
        return
    workdir = Path(__import__("tempfile").mkdtemp(prefix="reports-bench-"))
    backend = Backend.start(args.backend, workdir)
    try:
        _, table_text = measure(backend.fresh_database("reports"), args.operations,
                                args.members, backend.label)
    finally:
        backend.stop()
        __import__("shutil").rmtree(workdir, ignore_errors=True)
    print(table_text)


if __name__ == "__main__":
    main()
