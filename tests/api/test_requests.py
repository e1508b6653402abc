"""Request-level rules (issue 9, item 3): several operations need ``operationName``; the
default burst is the documented tenth of a minute's allowance."""

from __future__ import annotations

from pathlib import Path

from gateway.limits import InProcessRateLimiter, default_burst
from gateway.settings import Limits
from tests.support.harness import ledger_snapshot, make_gateway, partner_api

TWO = ('query A { __typename } '
       'mutation B { enrolCustomer(input: {customerId: "two-ops"}) { __typename } }')


async def test_several_operations_without_a_name_are_a_request_error(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    before = ledger_snapshot(gateway)
    response = await api.post(TWO)
    assert response.status_code == 400
    assert response.json() == {"errors": [{
        "message": "the document holds 2 operations: say which one to run in `operationName`",
        "extensions": {"code": "BAD_REQUEST"}}]}
    assert ledger_snapshot(gateway) == before


async def test_the_named_operation_runs(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    async with api.http() as client:
        response = await client.post("/graphql", json={"query": TWO, "operationName": "B"},
                                     headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200
    assert response.json() == {"data": {"enrolCustomer": {"__typename": "EnrolCustomerSuccess"}}}


def test_the_default_burst_is_the_documented_sixty() -> None:
    assert default_burst(Limits.rate_limit_per_minute) == 60
    now = 1000.0
    limiter = InProcessRateLimiter(600, now=lambda: now)
    assert [limiter.hit("c").allowed for _ in range(61)] == [True] * 60 + [False]
