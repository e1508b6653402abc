"""A segment refresh vs a bare keyset scan of the members, on SQLite (decision 026).

A fresh SQLite database with ``--members`` members linked at the grocery and ``--operations``
grocery earns over the past 300 days (``seed.bulk_load``); every member consented to the use
of their purchase history. One segment, "1 or more grocery earns in the last 30 days and none
at fuel". Then, best of three: ``segments.refresh`` (batches of 1,000, one transaction each),
and the baseline: the same keyset pass over active members' ids with nothing else read. The
figure is members per second and the extrapolation to 1,000,000 members.

    .venv/bin/python -m benchmarks.segments --members 100000 --operations 300000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, text

from benchmarks import seed
from gateway.db.tables import consents, members
from gateway.promotions import segments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=300_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        gw = seed.prepare(f"sqlite:///{Path(tmp) / 'bench.db'}")
        engine = gw.services.engine
        print(f"loading {args.members} members, {args.operations} earns ...", file=sys.stderr)
        seed.bulk_load(engine, args.members, args.operations)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            ids = list(conn.execute(select(members.c.id)).scalars())
            conn.execute(insert(consents), [
                {"member_id": i, "partner_id": None, "purpose": "purchase_history",
                 "granted": 1, "at": now, "via": "app"} for i in ids])
        clauses = segments.parse_clauses([{"at": "grocery", "days": 30},
                                          {"neverAt": "fuel", "days": 30}])
        segments.define(engine, "grocery", "recent", "Recent grocery, no fuel", clauses,
                        actor="bench", now=now)
        refresh_s, scan_s = [], []
        done = None
        for _ in range(3):
            start = time.perf_counter()
            done = segments.refresh(engine, datetime.now(UTC))
            refresh_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            scanned, after = 0, ""
            with engine.connect() as conn:
                while True:
                    batch = list(conn.execute(text(
                        "SELECT id FROM members WHERE id > :after AND status = 'active' "
                        "ORDER BY id LIMIT 1000"), {"after": after}).scalars())
                    if not batch:
                        break
                    scanned, after = scanned + len(batch), batch[-1]
            scan_s.append(time.perf_counter() - start)
        assert done is not None and done.members_scanned == args.members
        best, base = min(refresh_s), min(scan_s)
        rate = args.members / best
        print(f"members: {args.members}, in segment: {done.counts['grocery:recent']}")
        print(f"refresh: {best:.2f} s ({rate:,.0f} members/s); bare scan {base:.2f} s; "
              f"ratio {best / base:.1f}x")
        print(f"1,000,000 members: about {1_000_000 / rate / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
