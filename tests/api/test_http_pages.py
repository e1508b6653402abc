"""HTML pages and other HTTP endpoints (issue 9, item 4): every response is ``nosniff``; every
HTML page carries a CSP with ``frame-ancestors 'none'`` (gateway/web/headers.py); the settlement
report shares the client's GraphQL rate limit."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import Limits
from gateway.web.headers import HTML_POLICY
from tests.settlement.scenario import run_worked_example
from tests.settlement.test_api import finance
from tests.support.harness import make_gateway, partner_api

POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://unpkg.com; "
          "style-src 'self' 'unsafe-inline' https://unpkg.com; "
          "font-src 'self' data: https://unpkg.com; img-src 'self' data:; connect-src 'self'; "
          "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


def test_the_policy_is_the_documented_one() -> None:
    assert HTML_POLICY == POLICY


async def test_graphiql_and_json_answers(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    async with api.http() as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        json_answer = await client.post("/graphql", json={"query": "{ __typename }"},
                                        headers={"Authorization": f"Bearer {api.token}"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"] == POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert json_answer.status_code == 200
    assert json_answer.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in json_answer.headers


async def test_the_settlement_report_page(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    coalition = await finance(gw, None, ["settlement:read"])
    url = "/settlement/report?start=2026-01-01T00:00:00%2B00:00&end=2026-02-01T00:00:00Z"
    async with coalition.http() as client:
        page = await client.get(url, headers={"Authorization": f"Bearer {coalition.token}"})
    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"] == POLICY


async def test_the_report_page_shares_the_graphql_rate_limit(tmp_path: Path) -> None:
    """GET /settlement/report was not rate limited at all (and each answer is megabytes)."""
    gw = make_gateway(tmp_path, limits=Limits(rate_limit_per_minute=1, rate_limit_burst=2))
    coalition = await finance(gw, None, ["settlement:read"])
    url = "/settlement/report?start=2026-01-01T00:00:00%2B00:00&end=2026-02-01T00:00:00Z"
    bearer = {"Authorization": f"Bearer {coalition.token}"}
    async with coalition.http() as client:
        first = await client.get(url, headers=bearer)
        graphql = await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer)
        third = await client.get(url, headers=bearer)
        fourth = await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer)
    assert (first.status_code, graphql.status_code) == (200, 200)
    assert third.status_code == 429
    assert third.headers["retry-after"] == "60"
    assert third.json() == {"errors": [{
        "message": "rate limit reached for this client; retry after 60 s",
        "extensions": {"code": "RATE_LIMITED"}}]}
    assert fourth.status_code == 429
