"""Drive a server with wrk (loopback) and read back throughput, p50, p99 and success counts.

The Lua script (``benchmarks/wrk/graphql.lua``) gives every request a unique idempotency key,
picks a customer from the pre-enrolled pool, checks each response body for the success type,
paces the run when a target rate is given, and prints one ``BENCH_JSON`` line at the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "graphql.lua"
_runs = 0


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    ok: int
    bad: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    sample_bad: str

    @property
    def rps(self) -> float:
        """Successful requests per second (failed ones do not count as throughput)."""
        return self.ok / self.seconds if self.seconds else 0.0


def wrk(url: str, body: str, *, token: str = "", ok_marker: str = "", customers: int = 1,
        prefix: str = "c", first: int = 0, seconds: float = 10, connections: int = 16,
        threads: int = 1, rate: float = 0, label: str = "") -> LoadResult:
    """One wrk run; ``rate`` > 0 paces it at that many requests per second in total."""
    global _runs
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    _runs += 1
    env = {**os.environ, "BENCH_BODY": body, "BENCH_TOKEN": token, "BENCH_OK": ok_marker,
           "BENCH_CUSTOMERS": str(customers), "BENCH_PREFIX": prefix, "BENCH_FIRST": str(first),
           "BENCH_RATE": str(rate), "BENCH_THREADS": str(threads),
           "BENCH_RUN": f"{os.getpid()}-{_runs}"}
    duration = max(1, round(seconds))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s",
           "-s", str(SCRIPT), url]
    paced = f" paced at {rate:,.0f}/s" if rate else ""
    progress(f"    wrk {label}: {connections} connections, {duration} s{paced}")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                          timeout=duration + 120)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    result = LoadResult(
        requests=data["requests"], seconds=data["duration_us"] / 1e6, ok=data["ok"],
        bad=data["bad"], socket_errors=data["socket_errors"], p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, sample_bad=data["sample_bad"],
    )
    # Requests wrk left in flight at the end are still being served: let them finish so the
    # next run starts on an idle server.
    time.sleep(min(5.0, connections / max(result.rps, 1.0)))
    progress(f"      {result.rps:,.0f} ok/s, p50 {result.p50_ms:.2f} ms, "
             f"p99 {result.p99_ms:.2f} ms, {result.bad} failed, "
             f"{result.socket_errors} socket errors, {result.requests} requests")
    return result


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
