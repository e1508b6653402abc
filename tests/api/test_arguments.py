"""Root-field arguments are checked and normalised once (gateway/api/arguments.py; issue 9,
item 3): lone surrogates, NFC ids, no Cc/Cf/Cs in ids, a 128-character cap on every id, and an
undecodable body is HTTP 400."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.harness import ledger_snapshot, make_gateway, partner_api

EARN = ('mutation($c: ID!, $k: String!, $p: String!) { earnPoints(input: {customerId: $c, '
        'idempotencyKey: $k, purchaseId: $p, channel: STORE, amount: {amountMinor: 1000, '
        'currency: "UAH"}}) { __typename ... on EarnPointsSuccess { points } '
        '... on Error { code message field } } }')
ENROL = ('mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) { __typename '
         '... on EnrolCustomerSuccess { created } ... on Error { code message field } } }')
MEMBER = ('query($c: ID!) { member(customerId: $c) { __typename ... on Member { customerId } '
          '... on Error { code message field } } }')


@pytest.mark.parametrize(("variables", "field", "message"), [
    ({"c": "c-\ud800", "k": "k-1", "p": "p-1"}, "input.customerId",
     "input.customerId must be valid Unicode (it holds a lone surrogate)"),
    ({"c": "c-1", "k": "k-1", "p": "p-\udc00"}, "input.purchaseId",
     "input.purchaseId must be valid Unicode (it holds a lone surrogate)"),
    ({"c": "c-\u200b", "k": "k-1", "p": "p-1"}, "input.customerId",
     "input.customerId must not contain format characters (U+200B)"),
    ({"c": "c-1", "k": "k-\x07", "p": "p-1"}, "input.idempotencyKey",
     "input.idempotencyKey must not contain control characters (U+0007)"),
    ({"c": "c" * 129, "k": "k-1", "p": "p-1"}, "input.customerId",
     "input.customerId must be at most 128 characters"),
    ({"c": "c-1", "k": "k-1", "p": "p" * 129}, "input.purchaseId",
     "input.purchaseId must be at most 128 characters"),
    ({"c": "c-1", "k": "k" * 201, "p": "p-1"}, "input.idempotencyKey",  # the contract's 200
     "input.idempotencyKey must be at most 200 characters"),
])
async def test_bad_id_text_is_invalid_input_naming_the_argument(
    tmp_path: Path, variables: dict[str, str], field: str, message: str
) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    before = ledger_snapshot(gateway)
    async with api.http() as client:  # json.dumps escapes a lone surrogate as "\ud800"
        response = await client.post(
            "/graphql", content=json.dumps({"query": EARN, "variables": variables}),
            headers={"Authorization": f"Bearer {api.token}",
                     "Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"data": {"earnPoints": {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT", "message": message,
        "field": field}}}
    assert ledger_snapshot(gateway) == before


async def test_a_huge_customer_id_is_not_looked_up_or_echoed(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    response = await api.post(MEMBER, {"c": "x" * 60_000})
    assert response.json() == {"data": {"member": {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "customerId must be at most 128 characters", "field": "customerId"}}}
    assert len(response.content) < 300


async def test_ids_are_normalised_to_nfc(tmp_path: Path) -> None:
    """'é' precomposed and 'e' + combining acute are one customer."""
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    first = await api.gql(ENROL, {"c": "ren\u00e9"})
    again = await api.gql(ENROL, {"c": "rene\u0301"})
    assert first == {"enrolCustomer": {"__typename": "EnrolCustomerSuccess", "created": True}}
    assert again == {"enrolCustomer": {"__typename": "EnrolCustomerSuccess", "created": False}}
    assert await api.gql(MEMBER, {"c": "rene\u0301"}) == {
        "member": {"__typename": "Member", "customerId": "ren\u00e9"}}


async def test_an_undecodable_body_is_400(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    async with api.http() as client:
        response = await client.post(
            "/graphql", content=b'{"query": "{ __typename \xff\xfe }"}',
            headers={"Authorization": f"Bearer {api.token}",
                     "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"errors": [{
        "message": "the request body is not valid UTF-8",
        "extensions": {"code": "BAD_REQUEST"}}]}
