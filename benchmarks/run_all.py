"""Run every benchmark (issues 5, 10, 11) and print one table (benchmark, backend, metric, value,
baseline, ratio, target, met?); results also go to benchmarks/results/latest.json and .md.

    .venv/bin/python -m benchmarks                      # all, SQLite then PostgreSQL (~10 min)
    .venv/bin/python -m benchmarks --backend sqlite --only earn
    .venv/bin/python -m benchmarks --quick --backend sqlite   # tiny sizes: the CI smoke test

Each figure is a ratio against a baseline measured in the same run on the same machine, with
wrk on loopback against real server processes. Method and latest figures: docs/benchmarks.md.
``benchmarks/settlement.py`` (settlement report vs GROUP BY) is run separately."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import (
    balance,
    campaigns,
    earn,
    hot,
    redeem,
    reports,
    scale,
    serve,
    signin,
    table,
    viewer,
)
from benchmarks.env import Backend, Plan
from benchmarks.load import progress

BENCHMARKS: dict[str, Callable[[Backend, Plan], list[table.Row]]] = {
    "earn": earn.run, "balance": balance.run, "redeem": redeem.run, "scale": scale.run,
}
BENCHMARKS["viewer"] = viewer.run  # issue 10: the member's wallet at 1M transfers
BENCHMARKS["signin"] = signin.run  # issue 10: other requests' p99 during 20 sign-ins
BENCHMARKS["hot"] = hot.run  # issue 11: 32 earns at one partner vs spread over eight
BENCHMARKS["campaigns"] = campaigns.run  # issue 12: an earn with 70 campaigns vs none
BENCHMARKS["reports"] = reports.run  # issue 13: the programme report at 10M operations
# Programs the benchmarks run, checked before anything starts so that a missing one is named
# (``python3 dev.py test`` installs them; by hand: ``apt-get install wrk``).
REQUIRED_TOOLS = ("wrk",)


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke test)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append",
                        help="run only on this backend (repeatable; default both)")
    parser.add_argument("--seconds", type=float, help="override each measured run's length")
    parser.add_argument("--transfers", type=int, help="override the balance benchmark's size")
    parser.add_argument("--scale-members", type=int, dest="scale_big",
                        help="override the scale benchmark's big size (default 1,000,000)")
    parser.add_argument("--members", type=int,
                        help="customers the earn, redeem and campaigns loads are spread over "
                             "(default 10,000; 1,000,000 for the at-scale figures)")
    parser.add_argument("--workers", type=int,
                        help="server processes on PostgreSQL (default 2, quick 1); SQLite: 1")
    parser.add_argument("--trusted-documents", action="store_true", default=None,
                        help="earn and the reads send trusted document ids, not texts (the "
                             "bare baseline always sends its text)")
    parser.add_argument("--output", default="latest", help="results file stem (default latest)")
    parser.add_argument("--results-dir", type=Path, default=table.RESULTS,
                        help="where the .json and .md go (default benchmarks/results)")
    args = parser.parse_args(argv)
    if missing := missing_tools():
        progress(f"error: missing program(s) on PATH: {', '.join(missing)} "
                 f"(python3 dev.py test installs them; or apt-get install {' '.join(missing)})")
        return 2
    plan = Plan.quick() if args.quick else Plan()
    overrides = {"seconds": args.seconds, "transfers": args.transfers, "workers": args.workers,
                 "members": args.members, "scale_big": args.scale_big,
                 "trusted_documents": args.trusted_documents}
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    names = args.only or list(BENCHMARKS)
    backends = args.backend or ["sqlite", "postgresql"]
    workers = {name: serve.effective_workers(plan.workers, name) for name in backends}
    rows: list[table.Row] = []
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        for backend_name in backends:
            backend = Backend.start(backend_name, workdir)
            try:
                for name in names:
                    rows += BENCHMARKS[name](backend, plan)
            finally:
                backend.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta: dict[str, object] = {"mode": "quick" if args.quick else "full", "cpus": os.cpu_count(),
            "workers": workers, "seconds_per_run": plan.seconds,
            "elapsed_s": round(time.monotonic() - started)}
    paths = table.write(rows, meta, args.output, args.results_dir)
    print(table.render_text(rows))
    progress(f"\nwritten: {', '.join(str(p) for p in paths)} ({meta['elapsed_s']} s)")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
