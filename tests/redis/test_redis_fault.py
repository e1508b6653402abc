"""Kill Redis mid-load: no point lost or duplicated; limits behave as configured (issue 5).

The real app on this run's database, with a Redis of its own. Concurrent earns and redeems with
idempotency keys go through the real GraphQL API; Redis is SIGKILLed in the middle of the load
and the load goes on; then Redis comes back empty and every request that got no definitive
answer is retried with its key. Then: every key is exactly one operation, every acknowledged
result replays as itself, each balance is the sum of the acknowledged results, ``verify`` is
clean. While Redis is down, fail-open keeps serving; fail-closed answers 503
``RATE_LIMITER_UNAVAILABLE`` and moves no points."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger.verify import verify_ledger
from gateway.redis.health import connect
from tests.support import harness, servers
from tests.support.harness import Api, ledger_snapshot, partner_api

ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) {
  ... on EnrolCustomerSuccess { member { memberReference } } } }"""
ERROR = "... on Error { code message field }"
EARN = f"""mutation($input: EarnPointsInput!) {{ earnPoints(input: $input) {{ __typename
  ... on EarnPointsSuccess {{ operationId points available }} {ERROR} }} }}"""
REDEEM = f"""mutation($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{ __typename
  ... on RedeemPointsSuccess {{ operationId points available }} {ERROR} }} }}"""
BALANCE = """query($c: ID!) {
  member(customerId: $c) { ... on Member { balance { available } } } }"""

CUSTOMERS = [f"c-{i}" for i in range(4)]
OPENING = 500  # points each customer earns before the load
LOAD, DOWN = 60, 20  # requests while Redis is up then killed; requests while it stays down


@dataclass
class Op:
    key: str
    customer: str
    kind: str  # "earn" | "redeem"
    points: int  # what an earn is worth, or what a redeem asks for
    outcome: str = "unsent"  # ok | refused (a typed error) | unavailable (503) | unknown
    result: dict[str, Any] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)

    @property
    def definitive(self) -> bool:
        return self.outcome in ("ok", "refused")

    def request(self) -> tuple[str, dict[str, Any]]:
        if self.kind == "earn":  # grocery: 1 point per 10.00 UAH
            return EARN, {"customerId": self.customer, "channel": "STORE",
                          "amount": {"amountMinor": self.points * 1000, "currency": "UAH"},
                          "purchaseId": f"p-{self.key}", "idempotencyKey": self.key}
        return REDEEM, {"customerId": self.customer, "points": self.points,
                        "basketAmount": {"amountMinor": 20_000, "currency": "UAH"},
                        "idempotencyKey": self.key}


def workload(mode: str, start: int, count: int) -> list[Op]:
    ops = []
    for i in range(start, start + count):
        kind = "redeem" if i % 3 == 2 else "earn"
        points = 50 + 10 * (i % 4) if kind == "redeem" else 10 + i % 40
        ops.append(Op(f"{mode}-{i}", CUSTOMERS[i % len(CUSTOMERS)], kind, points))
    return ops


async def send(api: Api, op: Op) -> None:
    query, variables = op.request()
    try:
        response = await api.post(query, {"input": variables})
    except Exception as exc:  # the app failed mid-request: no definitive answer
        op.outcome, op.result = "unknown", {"error": repr(exc)}
        return
    op.statuses.append(response.status_code)
    body = response.json()
    if response.status_code == 503:
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITER_UNAVAILABLE", body
        assert int(response.headers["retry-after"]) >= 1
        op.outcome = "unavailable"
        return
    if response.status_code != 200 or "errors" in body:
        op.outcome, op.result = "unknown", body
        return
    result = next(iter(body["data"].values()))
    op.outcome = "ok" if result["__typename"].endswith("Success") else "refused"
    op.result = result


async def run(api: Api, ops: list[Op], *, after: int | None = None,
              then: Any = None) -> None:
    """Send ``ops`` eight at a time; once ``after`` have answered, call ``then`` (the kill)."""
    gate = asyncio.Semaphore(8)
    answered = 0
    fired = asyncio.Event()

    async def one(op: Op) -> None:
        nonlocal answered
        async with gate:
            await send(api, op)
        answered += 1
        if after is not None and answered >= after and not fired.is_set():
            fired.set()
            await asyncio.to_thread(then)

    await asyncio.gather(*(one(op) for op in ops))


def operations_by_key(gw: Gateway, mode: str) -> dict[str, int]:
    query = (select(t.operations.c.idempotency_key, func.count())
             .where(t.operations.c.idempotency_key.like(f"{mode}-%"))
             .group_by(t.operations.c.idempotency_key))
    with gw.services.engine.connect() as conn:
        return {key: count for key, count in conn.execute(query).all()}


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_kill_redis_mid_load(tmp_path: Path, own_redis: servers.RedisServer,
                                   mode: str) -> None:
    prefix = f"fault-{mode}:"
    settings = harness.test_settings(tmp_path, redis_url=own_redis.url, redis_prefix=prefix,
                                     redis_failure_mode=mode)
    gw = build(settings, clock=FixedClock(harness.NOW))
    harness.track(gw.services.engine)
    try:
        api = await partner_api(gw, "grocery")
        for customer in CUSTOMERS:
            await api.gql(ENROL, {"c": customer})
        opening = [Op(f"{mode}-open-{c}", c, "earn", OPENING) for c in CUSTOMERS]
        await run(api, opening)
        assert [op.outcome for op in opening] == ["ok"] * len(CUSTOMERS)

        # Under load, Redis dies after a third of the requests have been answered.
        load = workload(mode, 0, LOAD)
        await run(api, load, after=LOAD // 3, then=own_redis.kill)
        assert own_redis.proc is None

        # Redis stays down: the configured behaviour, and in closed mode nothing moves.
        before = ledger_snapshot(gw)
        down = workload(mode, LOAD, DOWN)
        await run(api, down)
        if mode == "open":
            assert {op.outcome for op in down} <= {"ok", "refused"}, [op.result for op in down]
            assert sum(op.outcome == "ok" for op in down) >= DOWN // 2
        else:
            assert [op.outcome for op in down] == ["unavailable"] * DOWN
            assert ledger_snapshot(gw) == before

        # Redis comes back empty; every request without a definitive answer is sent again.
        own_redis.start()
        everything = opening + load + down
        for _ in range(200):
            pending = [op for op in everything if not op.definitive]
            if not pending:
                break
            await run(api, pending)
            await asyncio.sleep(0.05)
        assert all(op.definitive for op in everything), [
            (op.key, op.outcome, op.result) for op in everything if not op.definitive]
        unavailable = sum(503 in op.statuses for op in everything)
        assert unavailable >= DOWN if mode == "closed" else unavailable == 0

        # Every key is exactly one operation; refused requests wrote nothing.
        acknowledged = {op.key: op for op in everything if op.outcome == "ok"}
        assert operations_by_key(gw, mode) == dict.fromkeys(acknowledged, 1)
        refused = {op.result["code"] for op in everything if op.outcome == "refused"}
        assert refused <= {"INSUFFICIENT_POINTS"}, refused

        # Every acknowledged request, sent again with its key, is a replay of the same result.
        for op in acknowledged.values():
            first = op.result
            await send(api, op)
            assert op.outcome == "ok" and op.result == first, (op.key, op.result, first)
        assert operations_by_key(gw, mode) == dict.fromkeys(acknowledged, 1)

        # Balances are exactly the acknowledged results; the ledger verifies.
        for customer in CUSTOMERS:
            expected = sum(op.result["points"] * (1 if op.kind == "earn" else -1)
                           for op in acknowledged.values() if op.customer == customer)
            found = (await api.gql(BALANCE, {"c": customer}))["member"]["balance"]
            assert found["available"] == expected, customer
        report = verify_ledger(gw.services.engine)
        assert report.ok, report.problems

        # Redis is in use again once the breaker probes it: the limiter writes its keys
        # there. (Token checks no longer ask Redis: revocations are held in memory and fed
        # from the database, gateway.auth.feed; so a revocation made now, with Redis back and
        # empty, is refused at once and reaches Redis too.)
        client = connect(own_redis.url)
        try:
            for _ in range(100):
                assert (await api.post("{ __typename }")).status_code == 200
                if client.exists(f"{prefix}rl:client:{api.client_id}"):
                    break
                await asyncio.sleep(0.05)
            assert client.exists(f"{prefix}rl:client:{api.client_id}") == 1
            async with api.http() as http:
                revoked = await http.post("/oauth/revoke", data={"token": api.token},
                                          auth=(api.client_id, api.secret))
            assert revoked.status_code == 200
            assert (await api.post("{ __typename }")).status_code == 401
            assert client.keys(f"{prefix}revoked:*") != []
        finally:
            client.close()
    finally:
        gw.backends.close()
