"""Benchmark 3: concurrent redeems on one member against redeems spread over many members.

First the race, for correctness: 100 redeems of 50 points sent at once to one member holding
3,000 points must give exactly 60 successes and 40 ``INSUFFICIENT_POINTS`` and leave 0; 100 at
once to 100 members must all succeed. Then throughput: wrk with 100 connections redeeming on
one hot member, against 100 connections spread over many members. Target: 0 overdrafts (no
wallet below zero, the hot wallet exactly its start less what was acknowledged, ``verify``
clean) and hot/spread throughput >= 0.5x."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import func, select

from benchmarks import seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.db.tables import accounts
from gateway.ledger.verify import verify_ledger

NAME = "redeem"
POINTS = 50
BODY = ('{"query": "mutation Redeem($c: ID!, $k: String!) { redeemPoints(input: {customerId: $c,'
        ' points: 50, basketAmount: {amountMinor: 10000, currency: \\"UAH\\"}, '
        'idempotencyKey: $k}) { __typename ... on RedeemPointsSuccess { available } '
        '... on Error { code message } } }", "variables": {"c": "@CUSTOMER@", "k": "@KEY@"}}')
HOT_START = 10**9
RACE_START = 3_000
CONCURRENT = 100


async def _burst(url: str, token: str, customers: list[str], tag: str) -> dict[str, int]:
    """Send one redeem per customer id, all at once; count answers by type/code."""
    query = BODY.replace("@CUSTOMER@", "{c}").replace("@KEY@", "{k}")
    limits = httpx.Limits(max_connections=len(customers))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"}) as client:
        responses = await asyncio.gather(*(
            client.post("/graphql", content=query.replace("{c}", c).replace("{k}", f"{tag}-{i}"))
            for i, c in enumerate(customers)))
    counts: dict[str, int] = {}
    for response in responses:
        result = response.json().get("data", {}).get("redeemPoints") or {}
        name = result.get("code") or result.get("__typename") or f"HTTP {response.status_code}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def run(backend: Backend, plan: Plan) -> list[Row]:
    spread = max(CONCURRENT, plan.members // 5)
    progress(f"[redeem] {backend.label}: {spread:,} funded members, one hot, one for the race")
    url = backend.fresh_database("redeem")
    engine = seed.prepare(url).services.engine
    spread_wallets = seed.enrol(engine, spread, "s")
    hot_wallet = seed.enrol(engine, 1, "hot", start=spread)
    race_wallet = seed.enrol(engine, 1, "race", start=spread + 1)
    seed.earn_history(engine, spread_wallets, 0, spread, points=lambda _: 10**7, each=True,
                      tag="s")
    seed.earn_history(engine, hot_wallet, spread, 1, points=lambda _: HOT_START, tag="h")
    seed.earn_history(engine, race_wallet, spread + 1, 1, points=lambda _: RACE_START, tag="r")
    workers = serve.effective_workers(plan.workers, backend.name)
    with serve.gateway(url, backend.workdir, workers=workers,
                       redis_url=backend.redis_url) as server:
        token = serve.token(server.base_url)
        race = asyncio.run(_burst(server.base_url, token, [f"race{spread + 1}"] * CONCURRENT,
                                  "race"))
        fanout = asyncio.run(_burst(server.base_url, token, [f"s{i}" for i in range(CONCURRENT)],
                                    "fan"))
        progress(f"    race on one member: {race}; spread: {fanout}")
        common: dict[str, Any] = {"token": token, "ok_marker": "RedeemPointsSuccess",
                                  "connections": CONCURRENT}
        gql = f"{server.base_url}/graphql"
        # 100 connections start with 100 requests queued at once: a run must be long enough
        # for that first wave to be a small part of it.
        seconds = max(plan.seconds, 3)
        if plan.warmup_seconds:
            wrk(gql, BODY, seconds=plan.warmup_seconds, customers=spread, prefix="s",
                label="spread warm-up", **common)
        hot = wrk(gql, BODY, seconds=seconds, customers=1, prefix="hot", first=spread,
                  label="one hot member", **common)
        wide = wrk(gql, BODY, seconds=seconds, customers=spread, prefix="s",
                   label=f"spread over {spread:,} members", **common)
    with engine.connect() as conn:
        negative = conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.kind.in_(["wallet", "held", "pending"]), accounts.c.balance < 0)
        ).scalar_one()
        hot_left, race_left = (conn.execute(select(accounts.c.balance).where(
            accounts.c.id == wallet[0])).scalar_one() for wallet in (hot_wallet, race_wallet))
    report = verify_ledger(engine)
    engine.dispose()
    expected_race = {"RedeemPointsSuccess": RACE_START // POINTS,
                     "INSUFFICIENT_POINTS": CONCURRENT - RACE_START // POINTS}
    problems = []
    if race != expected_race or race_left != RACE_START % POINTS:
        problems.append(f"race: {race}, left {race_left} (expected {expected_race}, left 0)")
    if fanout != {"RedeemPointsSuccess": CONCURRENT}:
        problems.append(f"spread burst: {fanout}")
    # Every acknowledged hot redeem took exactly 50 points, and nothing else did. wrk's own
    # count can miss answers cut off at the end of the run; those are the only slack allowed.
    taken = HOT_START - hot_left
    if taken % POINTS or not hot.ok <= taken // POINTS <= hot.requests + CONCURRENT:
        problems.append(f"hot wallet lost {taken} points for {hot.ok} acknowledged redeems")
    if not report.ok:
        problems.append("verify: " + "; ".join(report.problems[:3]))
    if hot.bad or wide.bad:
        problems.append(f"{hot.bad + wide.bad} failed, e.g. {hot.sample_bad or wide.sample_bad}")
    overdrafts = negative + (0 if race_left >= 0 else 1)
    note = (f"{CONCURRENT} connections; race: {race}; "
            f"{'; '.join(problems) if problems else 'verify clean, balances exact'}")
    throughput = ratio_row(NAME, backend.label, "throughput one member / spread (req/s)",
                           hot.rps, wide.rps, at_least=0.5, note=note)
    return [
        Row(NAME, backend.label, "overdrafts", overdrafts, None, "= 0",
            overdrafts == 0 and not problems),
        throughput if not problems else replace(throughput, met=False),
        ratio_row(NAME, backend.label, "p50 one member / spread", hot.p50_ms, wide.p50_ms,
                  unit="ms"),
        ratio_row(NAME, backend.label, "p99 one member / spread", hot.p99_ms, wide.p99_ms,
                  unit="ms"),
    ]
