"""CPU per part of a request, in process (issue 11): the µs-per-part table of
docs/benchmarks.md.

    .venv/bin/python -m benchmarks.parts [--members 10000]

Builds the app on a temporary SQLite file with ``--members`` members and as many grocery
operations, then times, each on its own and one at a time (``time.process_time``, all threads):
a whole earnPoints and member-balance request through the real ASGI app (httpx's in-process
transport, a real token), the bare Strawberry mutation the same way, and the parts the
gateway's requests are made of. Comparable between two trees of the project: run it from each
tree's root on the same machine (docs/benchmarks.md did, for the tree before issue 11)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks import balance, bare, earn, seed
from benchmarks.serve import DEMO_CLIENT
from gateway.api.context import Context
from gateway.app import Gateway, build
from gateway.auth.clients import ensure_demo_client
from gateway.auth.scopes import DEFAULT_ALLOWANCE
from gateway.core.ids import ClientId, PartnerId
from gateway.core.money import Money
from gateway.core.principal import Principal
from gateway.db.uow import UnitOfWork
from gateway.ledger import balances
from gateway.ledger import service as ledger
from gateway.ledger.model import EarnPoints
from gateway.members import service
from gateway.settings import Limits, Settings


def cpu_us(fn: Callable[[int], object], n: int) -> float:
    for i in range(20):
        fn(i)
    started = time.process_time()
    for i in range(n):
        fn(i + 20)
    return 1e6 * (time.process_time() - started) / n


async def _requests(gw: Gateway, members: int, n: int) -> tuple[dict[str, float], str]:
    out: dict[str, float] = {}
    transport = httpx.ASGITransport(app=gw.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        response = await c.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=DEMO_CLIENT)
        token: str = response.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        async def run(client: httpx.AsyncClient, body: str, marker: str,
                      send: dict[str, str]) -> float:
            async def one(i: int) -> None:
                content = body.replace("@CUSTOMER@", f"c{i * 37 % members}").replace(
                    "@KEY@", f"k{time.monotonic_ns()}")
                answer = await client.post("/graphql", content=content, headers=send)
                assert marker in answer.text, answer.text

            for i in range(20):
                await one(i)
            started = time.process_time()
            for i in range(n):
                await one(i)
            return 1e6 * (time.process_time() - started) / n

        out["earnPoints request, whole (in process)"] = await run(
            c, earn.BODY, "EarnPointsSuccess", headers)
        out["member balance request, whole (in process)"] = await run(
            c, balance.BODY, '"Member"', headers)
    bare_transport = httpx.ASGITransport(app=bare.app)
    async with httpx.AsyncClient(transport=bare_transport, base_url="http://x") as c:
        out["bare Strawberry mutation, whole (in process)"] = await run(
            c, bare.BODY, "EarnSuccess", {"Content-Type": "application/json"})
    return out, token


def measure(members: int, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-parts-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'parts.db'}"
        seed.prepare(url).services.engine.dispose()
        unlimited = 10**8
        gw = build(Settings(database_url=url, issuer="http://127.0.0.1:8000",
                            limits=Limits(rate_limit_per_minute=unlimited,
                                          rate_limit_burst=unlimited)))
        engine, clock = gw.services.engine, gw.services.clock
        ensure_demo_client(engine, "grocery", *DEMO_CLIENT, DEFAULT_ALLOWANCE["partner"])
        wallets = seed.enrol(engine, members, "c")
        seed.earn_history(engine, wallets, 0, members)
        out, token = asyncio.run(_requests(gw, members, requests))

        def read_unit(_: int) -> None:
            with UnitOfWork(engine, write=False):
                pass

        def earn_once(i: int) -> None:
            key = f"p{time.monotonic_ns()}"
            ledger.earn_points(gw.services.ledger, EarnPoints(
                "grocery", f"c{i * 7 % members}", Money(10000, "UAH"), "store", key, key))

        out["token check, a token seen before"] = cpu_us(
            lambda _: gw.auth.tokens.verify(token), 2000)
        out["read unit of work, empty (connection, BEGIN, ROLLBACK)"] = cpu_us(read_unit, 2000)
        out["membership lookup (customer -> member)"] = cpu_us(
            lambda i: service.find_memberships(engine, clock, "grocery", [f"c{i % members}"]), 1000)
        out["member balances read"] = cpu_us(
            lambda i: balances.member_balances(engine, clock, [seed.member_id(i % members)]),
            1000)
        out["ledger earn_points (service call, durable commit)"] = cpu_us(earn_once, requests)
        out["ledger earn_points, 16 threads at once (CPU per earn)"], rate = _concurrent(
            earn_once, requests)
        out["ledger earn_points, 16 threads at once (earns per wall second)"] = rate
        # The resolver's two ways to a durable earn, A/B in one run (twice each, interleaved,
        # the better of each kept): Context.run (a worker thread that waits on the writer)
        # and Context.command (awaited on the loop; decision 012).
        for way in ("thread", "loop", "thread", "loop"):
            cpu, rate = asyncio.run(_loop_earns(gw, members, requests, way))
            name = f"ledger earn, 16 tasks on one loop, {way} path"
            out[f"{name} (CPU per earn)"] = min(cpu, out.get(f"{name} (CPU per earn)", cpu))
            rate_name = f"{name} (earns per wall second)"
            out[rate_name] = max(rate, out.get(rate_name, rate))
        engine.dispose()
    return out


def _concurrent(fn: Callable[[int], object], n: int, threads: int = 16) -> tuple[float, float]:
    """CPU per call and calls per wall second with ``threads`` callers at once: what group
    commit shares (one BEGIN, COMMIT and fsync per batch) shows only here."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, range(threads)))
        started, wall = time.process_time(), time.perf_counter()
        list(pool.map(fn, range(n)))
        cpu, wall = time.process_time() - started, time.perf_counter() - wall
    return 1e6 * cpu / n, n / wall


async def _loop_earns(gw: Gateway, members: int, n: int, way: str,
                      tasks: int = 16) -> tuple[float, float]:
    """CPU per earn and earns per wall second with ``tasks`` resolvers at once on one event
    loop, the ledger call made the resolver's way: ``thread`` (``Context.run``) or ``loop``
    (``Context.command``)."""
    c = Context(gw.services, Principal(ClientId("bench"), PartnerId("grocery"), frozenset()))
    run = c.run if way == "thread" else c.command
    counter = iter(range(10**9))

    async def worker(count: int) -> None:
        for _ in range(count):
            i = next(counter)
            key = f"{way}{time.monotonic_ns()}-{i}"
            await run(ledger.earn_points, gw.services.ledger, EarnPoints(
                "grocery", f"c{i * 7 % members}", Money(10000, "UAH"), "store", key, key))

    await asyncio.gather(*(worker(2) for _ in range(tasks)))  # warm: pool threads, writer
    started, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
    done = n // tasks * tasks
    cpu, wall = time.process_time() - started, time.perf_counter() - wall
    return 1e6 * cpu / done, done / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    for part, micros in measure(args.members, args.requests).items():
        print(f"| {part} | {micros:,.0f} |")


if __name__ == "__main__":
    main()
