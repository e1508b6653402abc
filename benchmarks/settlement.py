"""Settlement report vs a raw SQL GROUP BY over the same rows, on SQLite and PostgreSQL.

For each backend: a fresh database (PostgreSQL: a throwaway durable server this script starts
and stops), 20,000 members enrolled by ``seed.bulk_load``, then ``--operations`` operations
across 5 partners (earn 60 %, redeem 30 %, return 10 %, with their transfers, lots and lot
movements) loaded through the raw driver (SQLite ``executemany``, PostgreSQL ``COPY``) in a
child process, with progress on stderr. Then, best of three (one above 2M), interleaved:
``settlement_report`` for the whole (open) period from the rows alone (no day rollup stored
yet) and the baseline, one raw GROUP BY of the period's transfers per partner and operation
kind (what a hand-written "totals per partner" query costs), on a connection of the same
engine. Then cold: the first report with a clock, which stores the exact sums of the period's
final days (decision 016) and reads them; and warm (best of three): the rollups present. All
three must give the same report. Then the period is closed and its report read back (served from
the stored snapshot; best of five). The report's peak RSS is this process's high-water mark:
the loader runs in a child, so it is the report's own (target: flat from 1M to 10M).

    .venv/bin/python -m benchmarks.settlement                          # 1M, both backends
    .venv/bin/python -m benchmarks.settlement --operations 10000000 --backend sqlite
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from benchmarks import seed, serve
from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.settings import DEFAULT_CATALOG, Settings
from gateway.settlement.model import Period
from gateway.settlement.service import close_period, roll_up, settlement_report

PARTNERS = ("grocery", "electronics", "fuel", "charity", "bakery")
EARNERS = ("grocery", "electronics", "fuel", "bakery")
START = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD = Period(START, START + timedelta(days=60))
MEMBERS = 20_000
CHUNK = 100_000
SPAN_SECONDS = 2_000_000  # the operations are spread over the first 23 days of the period

BASELINE = ("SELECT o.partner_id, o.kind, SUM(t.amount) FROM transfers t "
            "JOIN operations o ON o.id = t.operation_id "
            "WHERE o.recorded_at >= {p} AND o.recorded_at < {p} GROUP BY o.partner_id, o.kind")


def catalog(tmp: Path) -> Path:
    target = tmp / "catalog"
    shutil.copytree(DEFAULT_CATALOG, target, dirs_exist_ok=True)
    bakery = (target / "grocery.toml").read_text().replace('id = "grocery"', 'id = "bakery"')
    (target / "bakery.toml").write_text(bakery.replace("Kolos Grocery", "Khlib Bakery"))
    return target


def progress(what: str, done: int, total: int) -> None:
    sys.stderr.write(f"\r  {what}: {done:,}/{total:,}   ")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@dataclass
class Batch:
    operations: list[tuple[Any, ...]]
    transfers: list[tuple[Any, ...]]
    lots: list[tuple[Any, ...]]
    moves: list[tuple[Any, ...]]


def batches(rows: int, wallet: Sequence[int], accounts: dict[str, int],
            stamp: Callable[[datetime], Any]) -> Iterator[Batch]:
    """The operation mix in chunks: an earn makes a lot, a redeem takes from the member's last
    lot, a return reverses part of that lot's earn."""
    rng = random.Random(4)
    last_lot: dict[int, tuple[int, str, str]] = {}  # member -> (lot id, origin, earn op)
    lot_id = 0
    step = timedelta(seconds=SPAN_SECONDS / max(rows, 1))
    for base in range(0, rows, CHUNK):
        batch = Batch([], [], [], [])
        for n in range(base, min(base + CHUNK, rows)):
            member = rng.randrange(len(wallet))
            mid = seed.member_id(member)
            at = stamp(START + n * step)
            op = f"op{n:010d}"
            roll = rng.random()
            lot = last_lot.get(member)
            if roll < 0.6 or lot is None:
                partner = rng.choice(EARNERS)
                points = rng.randint(10, 400)
                batch.operations.append((op, partner, mid, "earn", f"k{n}", None, partner, 1,
                                         points * 1000, "UAH", points, at, at, "{}"))
                batch.transfers.append((op, accounts[f"partner:{partner}:issued"],
                                        wallet[member], points, at))
                lot_id += 1
                batch.lots.append((lot_id, mid, partner, op, points, points, at, at, at, 0))
                last_lot[member] = (lot_id, partner, op)
            elif roll < 0.9:
                partner = rng.choice(PARTNERS)
                points = rng.randint(1, 10)
                batch.operations.append((op, partner, mid, "redeem", f"k{n}", None, partner, 1,
                                         None, None, -points, at, at, "{}"))
                batch.transfers.append((op, wallet[member],
                                        accounts[f"partner:{partner}:redeemed"], points, at))
                batch.moves.append((lot[0], op, -points, at))
            else:
                _, origin, earn = lot
                points = rng.randint(1, 10)
                batch.operations.append((op, origin, mid, "return", f"k{n}", earn, None, None,
                                         1000, "UAH", -points, at, at, "{}"))
                batch.transfers.append((op, wallet[member],
                                        accounts[f"partner:{origin}:issued"], points, at))
        yield batch


COLUMNS = {
    "operations": "id, partner_id, member_id, kind, idempotency_key, parent_id, "
                  "rule_partner_id, rule_version, amount_minor, currency, points, occurred_at, "
                  "recorded_at, result",
    "transfers": "operation_id, debit_account_id, credit_account_id, amount, recorded_at",
    "lots": "id, member_id, origin_partner_id, operation_id, points, remaining, earned_at, "
            "available_at, expires_at, pending",
    "lot_movements": "lot_id, operation_id, points, recorded_at",
}


def load(database_url: str, catalog_dir: str, rows: int) -> None:
    """Members through ``seed.bulk_load``, then the operation mix through the raw driver, in
    one transaction per chunk; ANALYZE at the end (both planners need the statistics)."""
    engine = build(Settings(database_url=database_url,
                            catalog_dir=Path(catalog_dir))).services.engine
    seed.bulk_load(engine, MEMBERS, 0, report=progress)
    sqlite_db = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        accounts = {str(code): int(i) for code, i in conn.execute(
            text("SELECT code, id FROM accounts WHERE member_id IS NULL"))}
        wallets = {str(m): int(i) for m, i in conn.execute(text(
            "SELECT member_id, id FROM accounts WHERE kind = 'wallet' "
            "AND member_id IS NOT NULL"))}
    wallet = [int(wallets[seed.member_id(m)]) for m in range(MEMBERS)]

    def stamp(at: datetime) -> Any:  # what SQLAlchemy's UTCDateTime binds
        naive = at.replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite_db else naive

    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        if sqlite_db:  # benchmark data, rebuilt on every run: no fsync per chunk
            cursor.execute("PRAGMA synchronous=OFF")
        done = 0
        for batch in batches(rows, wallet, accounts, stamp):
            for table, columns in COLUMNS.items():
                data = getattr(batch, table if table != "lot_movements" else "moves")
                if sqlite_db:
                    marks = ", ".join("?" * len(columns.split(",")))
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)
                else:
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in data:
                            copy.write_row(row)
            raw.commit()
            done += len(batch.operations)
            progress("operations", done, rows)
        if not sqlite_db:
            cursor.execute("SELECT setval(pg_get_serial_sequence('lots', 'id'), "
                           "(SELECT max(id) FROM lots))")
            raw.commit()
    finally:
        raw.close()
    sys.stderr.write("  analyze\n")
    with engine.connect() as conn:
        if sqlite_db:
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE")
    engine.dispose()


@dataclass(frozen=True)
class Result:
    backend: str
    operations: int
    rows_s: float  # the report from the rows alone (no rollup stored yet)
    cold_s: float  # the first report with a clock: the day rollups stored, then read
    warm_s: float  # the day rollups present
    baseline_s: float
    close_s: float
    closed_read_ms: float
    peak_rss_mb: float


def baseline(engine: Engine) -> float:
    sql = BASELINE.format(p="?" if engine.dialect.name == "sqlite" else "%s")
    bounds = (PERIOD.start, PERIOD.end)
    if engine.dialect.name == "sqlite":
        bounds = tuple(b.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
                       for b in bounds)  # type: ignore[assignment]
    else:
        bounds = tuple(b.replace(tzinfo=None) for b in bounds)  # type: ignore[assignment]
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        t0 = time.perf_counter()
        cursor.execute(sql, bounds)
        cursor.fetchall()
        elapsed = time.perf_counter() - t0
        raw.rollback()
    finally:
        raw.close()
    return elapsed


def measure(backend: str, database_url: str, workdir: Path, rows: int) -> Result:
    catalog_dir = catalog(workdir)
    print(f"{backend}, {rows:,} operations:", file=sys.stderr)
    gw: Gateway = build(Settings(database_url=database_url, catalog_dir=catalog_dir))
    gw.services.engine.dispose()  # no connection of ours in the loader's way
    loader = multiprocessing.get_context("spawn").Process(
        target=load, args=(database_url, str(catalog_dir), rows))
    t0 = time.perf_counter()
    loader.start()
    loader.join()
    if loader.exitcode != 0:
        raise SystemExit(f"loading failed ({loader.exitcode})")
    print(f"  loaded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    engine, rules = gw.services.engine, gw.services.rules
    rules.reload()
    clock = FixedClock(PERIOD.end + timedelta(days=1))  # every day of the period is final
    runs = 3 if rows <= 2_000_000 else 1  # 10M: one run, minutes each
    best_rows = best_base = float("inf")
    for attempt in range(runs):  # before any rollup: the report from the rows alone
        t0 = time.perf_counter()
        report = settlement_report(engine, rules, PERIOD, "EUR")
        best_rows = min(best_rows, time.perf_counter() - t0)
        best_base = min(best_base, baseline(engine))
        print(f"  run {attempt + 1}: report from rows {best_rows:.2f} s, GROUP BY "
              f"{best_base:.2f} s", file=sys.stderr)
    assert sum(p.net_minor for p in report.partners) + report.coalition.net_minor == 0
    # Cold: `gateway settlement rollup` stores the sums of the period's final days (once, a
    # week per transaction), then the report reads them. Warm: the rollups are there.
    t0 = time.perf_counter()
    roll_up(engine, clock, PERIOD)
    cold = settlement_report(engine, rules, PERIOD, "EUR")
    cold_s = time.perf_counter() - t0
    best_base = min(best_base, baseline(engine))
    print(f"  cold (rollups built): {cold_s:.2f} s", file=sys.stderr)
    best_warm = float("inf")
    for attempt in range(runs):
        t0 = time.perf_counter()
        warm = settlement_report(engine, rules, PERIOD, "EUR")
        best_warm = min(best_warm, time.perf_counter() - t0)
        best_base = min(best_base, baseline(engine))
        print(f"  run {attempt + 1}: warm {best_warm * 1000:.1f} ms, GROUP BY "
              f"{best_base:.2f} s", file=sys.stderr)
    assert cold.canonical_json() == warm.canonical_json() == report.canonical_json()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    closed = close_period(engine, rules, clock, PERIOD, "EUR", actor="benchmark")
    close_s = time.perf_counter() - t0
    best_read = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        served = settlement_report(engine, rules, PERIOD, "EUR")
        best_read = min(best_read, time.perf_counter() - t0)
    assert served.sha256 == closed.sha256 == report.sha256
    engine.dispose()
    return Result(backend, rows, best_rows, cold_s, best_warm, best_base, close_s,
                  best_read * 1000, peak_mb)


def run(backend: str, rows: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="settle-bench-") as tmp:
        workdir = Path(tmp)
        if backend == "sqlite":
            return measure(backend, f"sqlite:///{workdir / 'bench.db'}", workdir, rows)
        postgres = serve.start_postgres()
        try:
            return measure(backend, postgres.url(postgres.create_database()), workdir, rows)
        finally:
            postgres.stop()


def table(results: list[Result]) -> str:
    lines = [f"{'backend':<11} {'operations':>11} {'GROUP BY s':>10} {'rows s':>7} {'ratio':>6} "
             f"{'cold s':>7} {'ratio':>6} {'warm ms':>8} {'ratio':>6} {'close s':>8} "
             f"{'closed read ms':>14} {'peak RSS MB':>11}"]
    for r in results:
        base = r.baseline_s
        lines.append(f"{r.backend:<11} {r.operations:>11,} {base:>10.2f} {r.rows_s:>7.2f} "
                     f"{r.rows_s / base:>5.2f}x {r.cold_s:>7.2f} {r.cold_s / base:>5.2f}x "
                     f"{r.warm_s * 1000:>8.1f} {r.warm_s / base:>5.3f}x {r.close_s:>8.2f} "
                     f"{r.closed_read_ms:>14.1f} {r.peak_rss_mb:>11.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = [run(backend, args.operations) for backend in backends]
    print(table(results))


if __name__ == "__main__":
    main()
