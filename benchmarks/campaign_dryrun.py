"""A campaign dry run vs a raw read of the same rows, on SQLite.

A fresh SQLite database with ``--members`` members and ``--operations`` grocery earns spread
over the past 300 days (``seed.bulk_load``, the raw driver). Then, best of three, interleaved:
``dryrun.simulate_campaign`` of a draft (25 bonus points on 2,000.00 UAH or more, a budget) over
the last 90 days, and the baseline: one raw ``SELECT`` of the same columns and rows on a
connection of the same engine, every row fetched. The ratio is what the replay (chunked keyset
reads, the engine per earn, exact costs) costs on top of reading the rows once.

    .venv/bin/python -m benchmarks.campaign_dryrun --operations 200000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from benchmarks import seed
from gateway.promotions import dryrun, manage

DRAFT = {"id": "bench", "name": "Bench bonus", "validFrom": "2026-01-01T00:00:00Z",
         "conditions": {"minSpendMinor": 200000},
         "effects": [{"bonusPoints": {"points": 25}}], "limits": {"budgetPoints": 10**9}}
BASELINE = ("SELECT id, member_id, channel, amount_minor, currency, points, rule_version, "
            "occurred_at, recorded_at FROM operations WHERE partner_id = 'grocery' "
            "AND kind = 'earn' AND recorded_at >= :since AND recorded_at < :until "
            "ORDER BY recorded_at, id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--operations", type=int, default=200_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        gw = seed.prepare(f"sqlite:///{Path(tmp) / 'bench.db'}")
        engine, rules = gw.services.engine, gw.services.rules
        print(f"loading {args.members} members, {args.operations} earns ...", file=sys.stderr)
        seed.bulk_load(engine, args.members, args.operations)
        draft = manage.parse(DRAFT, owner="grocery")
        until = datetime.now(UTC) + timedelta(seconds=1)
        since = until - timedelta(days=90)
        dry_s, raw_s = [], []
        result = None
        for _ in range(3):
            start = time.perf_counter()
            result = dryrun.simulate_campaign(engine, rules.rule, draft, partner_id="grocery",
                                              since=since, until=until)
            dry_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            with engine.connect() as conn:
                rows = sum(1 for _ in conn.execute(
                    text(BASELINE), {"since": since.replace(tzinfo=None),
                                     "until": until.replace(tzinfo=None)}))
            raw_s.append(time.perf_counter() - start)
        assert result is not None and rows == result.operations_scanned, (rows, result)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"campaign dry run, SQLite: {result.operations_scanned} earns scanned in 90 days "
              f"(of {args.operations}), {result.operations_matched} matched, "
              f"{result.bonus_points} bonus points, cost {result.cost[0].minor} "
              f"{result.cost[0].currency} minor")
        print(f"  dry run {min(dry_s):.3f} s ({result.operations_scanned / min(dry_s):,.0f} "
              f"earns/s); raw read {min(raw_s):.3f} s; ratio {min(dry_s) / min(raw_s):.1f}x; "
              f"peak RSS {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
