"""Settlement report vs a raw SQL GROUP BY over the same rows, at two sizes.

Generates operations across 5 partners (earn 60 %, redeem 30 %, return 10 %, with their
transfers, lots and lot movements) by bulk INSERTs straight into a fresh SQLite file, then times
``settlement_report`` for the whole period and, in the same run, the baseline: one raw GROUP BY
of the period's transfers per partner and operation kind (what a hand-written "totals per
partner" query costs). Prints the ratio (target <= 2x) and the report's peak Python memory
(tracemalloc), which must stay flat as rows grow: the report streams grouped rows only.

    .venv/bin/python benchmarks/settlement.py --rows 1000000      # sizes: rows/10 and rows
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import build
from gateway.settings import DEFAULT_CATALOG, Settings
from gateway.settlement.model import Period
from gateway.settlement.service import settlement_report

PARTNERS = ("grocery", "electronics", "fuel", "charity", "bakery")
EARNERS = ("grocery", "electronics", "fuel", "bakery")
START = datetime(2026, 3, 1, tzinfo=UTC)
MEMBERS = 20_000
CHUNK = 50_000


def catalog(tmp: Path) -> Path:
    target = tmp / "catalog"
    shutil.copytree(DEFAULT_CATALOG, target)
    bakery = (target / "grocery.toml").read_text().replace('id = "grocery"', 'id = "bakery"')
    (target / "bakery.toml").write_text(bakery.replace("Kolos Grocery", "Khlib Bakery"))
    return target


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(db: Path, rows: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    cur = conn.cursor()
    now = stamp(START)
    cur.executemany("INSERT INTO members (id, created_at) VALUES (?, ?)",
                    [(f"m{i}", now) for i in range(MEMBERS)])
    cur.executemany("INSERT INTO accounts (code, kind, member_id, balance) VALUES (?,?,?,0)",
                    [(f"member:m{i}:wallet", "wallet", f"m{i}") for i in range(MEMBERS)])
    ids = dict(cur.execute("SELECT code, id FROM accounts"))
    wallet = [ids[f"member:m{i}:wallet"] for i in range(MEMBERS)]
    rng = random.Random(4)
    last_lot: dict[int, tuple[int, str, str]] = {}  # member -> (lot id, origin, earn op)
    lot_id = 0
    step = timedelta(seconds=2_000_000 / max(rows, 1))
    for base in range(0, rows, CHUNK):
        ops, transfers, lots, moves = [], [], [], []
        for n in range(base, min(base + CHUNK, rows)):
            member = rng.randrange(MEMBERS)
            at = stamp(START + n * step)
            op = f"op{n:09d}"
            roll = rng.random()
            lot = last_lot.get(member)
            if roll < 0.6 or lot is None:
                partner = rng.choice(EARNERS)
                points = rng.randint(10, 400)
                ops.append((op, partner, f"m{member}", "earn", f"k{n}", None, partner, 1,
                            points * 1000, "UAH", points, at, at, "{}"))
                transfers.append((op, ids[f"partner:{partner}:issued"], wallet[member], points,
                                  at))
                lot_id += 1
                lots.append((lot_id, f"m{member}", partner, op, points, points, at, at, at))
                last_lot[member] = (lot_id, partner, op)
            elif roll < 0.9:
                partner = rng.choice(PARTNERS)
                points = rng.randint(1, 10)
                ops.append((op, partner, f"m{member}", "redeem", f"k{n}", None, partner, 1,
                            None, None, -points, at, at, "{}"))
                transfers.append((op, wallet[member], ids[f"partner:{partner}:redeemed"],
                                  points, at))
                moves.append((lot[0], op, -points, at))
            else:
                _, origin, earn = lot
                points = rng.randint(1, 10)
                ops.append((op, origin, f"m{member}", "return", f"k{n}", earn, None, None,
                            1000, "UAH", -points, at, at, "{}"))
                transfers.append((op, wallet[member], ids[f"partner:{origin}:issued"], points,
                                  at))
        cur.executemany(
            "INSERT INTO operations (id, partner_id, member_id, kind, idempotency_key, "
            "parent_id, rule_partner_id, rule_version, amount_minor, currency, points, "
            "occurred_at, recorded_at, result) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", ops)
        cur.executemany("INSERT INTO transfers (operation_id, debit_account_id, "
                        "credit_account_id, amount, recorded_at) VALUES (?,?,?,?,?)", transfers)
        cur.executemany("INSERT INTO lots (id, member_id, origin_partner_id, operation_id, "
                        "points, remaining, earned_at, available_at, expires_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?)", lots)
        cur.executemany("INSERT INTO lot_movements (lot_id, operation_id, points, recorded_at) "
                        "VALUES (?,?,?,?)", moves)
        conn.commit()
        done = min(base + CHUNK, rows)
        sys.stderr.write(f"\r  generating {done:,}/{rows:,} operations")
    sys.stderr.write("\n")
    conn.execute("ANALYZE")
    conn.close()


BASELINE = ("SELECT o.partner_id, o.kind, SUM(t.amount) FROM transfers t "
            "JOIN operations o ON o.id = t.operation_id "
            "WHERE o.recorded_at >= ? AND o.recorded_at < ? GROUP BY o.partner_id, o.kind")


def measure(rows: int) -> tuple[int, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        settings = Settings(database_url=f"sqlite:///{db}", catalog_dir=catalog(Path(tmp)))
        gw = build(settings)
        generate(db, rows)
        period = Period(START, START + timedelta(days=60))
        gw.services.rules.reload()
        best_report = best_base = float("inf")
        peak = 0
        for _ in range(3):
            tracemalloc.start()
            t0 = time.perf_counter()
            report = settlement_report(gw.services.engine, gw.services.rules, period, "EUR")
            best_report = min(best_report, time.perf_counter() - t0)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            conn = sqlite3.connect(db)
            t0 = time.perf_counter()
            conn.execute(BASELINE, (stamp(period.start), stamp(period.end))).fetchall()
            best_base = min(best_base, time.perf_counter() - t0)
            conn.close()
        assert sum(p.net_minor for p in report.partners) + report.coalition.net_minor == 0
        gw.services.engine.dispose()
        return rows, best_report, best_base, peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="larger size (default 1M)")
    args = parser.parse_args()
    results = []
    for rows in (args.rows // 10, args.rows):
        print(f"{rows:,} operations:", file=sys.stderr)
        results.append(measure(rows))
    print(f"{'operations':>12} {'report s':>9} {'GROUP BY s':>10} {'ratio':>6} "
          f"{'peak MB':>8}")
    for rows, report_s, base_s, peak_mb in results:
        print(f"{rows:>12,} {report_s:>9.3f} {base_s:>10.3f} {report_s / base_s:>5.2f}x "
              f"{peak_mb:>8.2f}")


if __name__ == "__main__":
    main()
