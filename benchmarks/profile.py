"""Profile the hot path in process: N requests through the real ASGI app (no server, no
network), under pyinstrument, with the per-request cost printed.

    .venv/bin/python -m benchmarks.profile earn --requests 500 [--html /tmp/bench_earn.html]
    .venv/bin/python -m benchmarks.profile balance
    .venv/bin/python -m benchmarks.profile earn --by-id   # a registered (trusted) document
    .venv/bin/python -m benchmarks.profile earn --campaigns  # with benchmarks.campaigns' 70

Requests run one at a time, so the profile is the cost of one request, not of contention;
the server's thread hops (``anyio.to_thread``) are included, as they are when served."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from pyinstrument import Profiler

from benchmarks import balance, campaigns, earn, seed
from benchmarks.serve import DEMO_CLIENT
from gateway.app import build
from gateway.auth.clients import ensure_demo_client
from gateway.auth.scopes import DEFAULT_ALLOWANCE
from gateway.db.uow import UnitOfWork
from gateway.promotions.repository import publish_version
from gateway.settings import Limits, Settings

BODIES = {"earn": (earn.BODY, "EarnPointsSuccess"), "balance": (balance.BODY, '"Member"')}


async def _drive(app: object, body: str, marker: str, requests: int, customers: int,
                 profiler: Profiler | None) -> tuple[float, float]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        response = await c.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=DEMO_CLIENT)
        headers = {"Authorization": f"Bearer {response.json()['access_token']}",
                   "Content-Type": "application/json"}

        async def one(i: int) -> None:
            content = body.replace("@CUSTOMER@", f"c{i % customers}").replace(
                "@KEY@", f"p{time.monotonic_ns()}-{i}")
            r = await c.post("/graphql", content=content, headers=headers)
            assert marker in r.text, r.text

        for i in range(50):  # warm-up: caches, connections, imports
            await one(i)
        if profiler:
            profiler.start()
        t0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(requests):
            await one(i)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if profiler:
            profiler.stop()
        return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=sorted(BODIES))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    parser.add_argument("--campaigns", action="store_true",
                        help="publish benchmarks.campaigns' 70 campaigns first (35 awards/earn)")
    parser.add_argument("--applying", type=int, default=None,
                        help="with --campaigns: only this many of the 70 apply "
                             "(benchmarks.campaigns.FEW shape); default 35")
    parser.add_argument("--by-id", action="store_true",
                        help="register the document and send its id, not its text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'profile.db'}"
        prepared = seed.prepare(url)
        if args.campaigns:
            now = prepared.services.clock.now()
            with UnitOfWork(prepared.services.engine) as uow:
                for campaign in campaigns.seventy_campaigns(now, applying=args.applying):
                    publish_version(uow.conn, campaign, actor="bench", now=now)
                uow.commit()
        prepared.services.engine.dispose()
        unlimited = 10**8
        gw = build(Settings(database_url=url, issuer="http://127.0.0.1:8000",
                            limits=Limits(rate_limit_per_minute=unlimited,
                                          rate_limit_burst=unlimited)))
        ensure_demo_client(gw.services.engine, "grocery", *DEMO_CLIENT,
                           DEFAULT_ALLOWANCE["partner"])
        seed.enrol(gw.services.engine, 1000, "c")
        body, marker = BODIES[args.what]
        if args.by_id:
            body = seed.trusted_body(gw, body)
        profiler = None if args.no_profile else Profiler(interval=0.0005, async_mode="enabled")
        elapsed, cpu = asyncio.run(_drive(gw.app, body, marker, args.requests, 1000, profiler))
        # CPU time (all threads) is the figure to compare: wall time also counts fsync waits
        # and whatever else the machine is running.
        print(f"{args.what}: {args.requests} requests in {elapsed:.2f} s: "
              f"{1000 * elapsed / args.requests:.2f} ms wall, "
              f"{1000 * cpu / args.requests:.2f} ms CPU per request")
        if profiler:
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            if args.html:
                Path(args.html).write_text(profiler.output_html())
        gw.services.engine.dispose()


if __name__ == "__main__":
    main()
