"""A client's mistake is logged at info without a traceback; only the unexpected is an error
(gateway.api.schema.GatewaySchema; issue 9, item 3)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.harness import make_gateway, partner_api

HISTORY = """query($c: ID!, $first: Int!, $after: String) { member(customerId: $c) {
  ... on Member { history(first: $first, after: $after) { pageInfo { hasNextPage } } } } }"""
ENROL = 'mutation { enrolCustomer(input: {customerId: "log-1"}) { __typename } }'


@pytest.mark.parametrize(("variables", "code"), [
    ({"c": "log-1", "first": 500}, "INVALID_INPUT"),
    ({"c": "log-1", "first": 5, "after": "not-a-cursor"}, "INVALID_INPUT"),
])
async def test_domain_errors_are_info_without_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, variables: dict[str, object], code: str
) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    await api.gql(ENROL)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="strawberry.execution"):
        response = await api.post(HISTORY, variables)
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == code
    records = [r for r in caplog.records if r.name == "strawberry.execution"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert records[0].getMessage() == f"request error {code}: {body['errors'][0]['message']}"
