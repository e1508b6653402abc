"""Issue 9 item 2: does a flood of wrong client secrets slow another partner's GraphQL?

Starts ``gateway serve --demo`` (SQLite, one worker, as the outside probe ran it), measures
the median latency of one partner's sequential GraphQL requests alone, then again while a
second process floods ``/oauth/token`` at a steady rate with wrong secrets for another
partner's client id; reports the gateway's CPU seconds during the flood (steadier than
latency on a shared machine) and the ``audit_log`` rows the flood left. Before the limits
every wrong secret cost a scrypt (~50 ms of a core) and an audit row; after, all but the
first few are 429 without a hash.

    .venv/bin/python -m benchmarks.token_flood [--requests 300] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from benchmarks import serve

QUERY = {"query": "query { member(customerId: \"flood-probe\") { __typename } }"}
VICTIM = ("fuel-demo", "not-the-secret")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _median_ms(client: httpx.Client, token: str, requests: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.post("/graphql", json=QUERY, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return statistics.median(times)


def _flood(url: str, rate: int, seconds: float, control: bool = False) -> None:
    """Wrong secrets at a steady ``rate`` per second (an open loop: the offered load is the
    same whether the server hashes each one or refuses it at once)."""
    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     limits=httpx.Limits(max_connections=64)) as client:
            tasks = []
            started = time.perf_counter()
            for n in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                request = (client.get("/healthz") if control else client.post(
                    "/oauth/token", data={"grant_type": "client_credentials"}, auth=VICTIM))
                tasks.append(asyncio.create_task(request))
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=int, default=100, help="wrong secrets per second")
    parser.add_argument("--control", action="store_true",
                        help="flood GET /healthz instead: what any traffic at that rate costs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'flood.db'}"
        with serve.gateway(url, workdir) as server:
            token = serve.token(server.base_url)
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                _median_ms(client, token, 50)  # warm up
                alone = _median_ms(client, token, args.requests)
                flood = multiprocessing.Process(target=_flood,
                                                args=(server.base_url, args.rate, 20.0,
                                                      args.control))
                cpu_before = _cpu_s(server.pid)
                flood.start()
                time.sleep(2)
                during = _median_ms(client, token, args.requests)
                flood.join()
                flood_cpu = _cpu_s(server.pid) - cpu_before
        engine = create_engine(url)  # after a graceful stop: counts held in memory are written
        with engine.connect() as conn:
            details = [json.loads(row[0]) for row in conn.execute(text(
                "SELECT detail FROM audit_log WHERE action LIKE '%client_refused'"))]
        engine.dispose()
    counts: dict[str, int] = {}
    for detail in details:
        reason = str(detail.get("reason"))
        counts[reason] = counts.get(reason, 0) + int(detail.get("count", 1))
    print(f"another partner's GraphQL median, alone:        {alone:6.1f} ms")
    print(f"another partner's GraphQL median, during flood: {during:6.1f} ms")
    print(f"gateway CPU while flooded (flood + the measured requests): {flood_cpu:.1f} s")
    print(f"audit_log refusal rows after the flood: {len(details)}; refusals by reason: {counts}")


if __name__ == "__main__":
    main()
