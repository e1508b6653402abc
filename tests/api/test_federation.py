"""The Apollo Federation subgraph surface over HTTP: ``_entities`` and ``_service { sdl }``.

A partner's router resolves ``Member`` by the partner's own customer id. It sees its own
customers and nothing else: another partner's customer id answers exactly like one never seen
(``null``, no error); the fields need ``members:read`` and a partner token; every limit holds for
representations as for any other list. Every refusal asserts that nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.members.secrets import reference_for
from tests.support.harness import (
    PARTNER_SCOPES,
    Api,
    ledger_snapshot,
    make_gateway,
    partner_api,
)
from tests.support.members import link_code_for, member_api, member_id_of

SUBGRAPH_FILE = Path(__file__).resolve().parents[2] / "schema.subgraph.graphql"
ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) { __typename
  ... on Member { customerId memberReference balance { available }
                  history(first: 5) { edges { node { kind points } } } } } }"""
SDL = "{ _service { sdl } }"
MEMBER = """query($c: ID!) { member(customerId: $c) { ... on Member { customerId memberReference
  balance { available } history(first: 5) { edges { node { kind points } } } } } }"""
ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) {
  ... on EnrolCustomerSuccess { created } } }"""
LINK = """mutation($c: ID!, $code: String!) { linkCustomer(input: {customerId: $c,
  linkCode: $code}) { __typename } }"""
EARN = """mutation($c: ID!, $amount: MinorUnits!, $p: String!, $cur: String!) { earnPoints(input: {
  customerId: $c, amount: {amountMinor: $amount, currency: $cur}, channel: STORE,
  purchaseId: $p, idempotencyKey: $p}) { __typename } }"""


def rep(customer_id: Any) -> dict[str, Any]:
    return {"__typename": "Member", "customerId": customer_id}


async def world(tmp_path: Path, **kwargs: Any) -> tuple[Gateway, Api, Api]:
    """The grocery's g-1 (120 points earned there) is the electronics shop's e-7 (50 points
    earned there); the electronics shop also has its own e-solo."""
    gw = make_gateway(tmp_path, **kwargs)
    grocery, electronics = await partner_api(gw, "grocery"), await partner_api(gw, "electronics")
    await grocery.gql(ENROL, {"c": "g-1"})
    await electronics.gql(ENROL, {"c": "e-solo"})
    linked = await electronics.gql(LINK, {"c": "e-7", "code": link_code_for(gw, "grocery", "g-1")})
    assert linked == {"linkCustomer": {"__typename": "LinkCustomerSuccess"}}
    for api, customer, amount, currency in ((grocery, "g-1", 120000, "UAH"),
                                            (electronics, "e-7", 5000, "EUR")):
        earned = await api.gql(EARN, {"c": customer, "amount": amount, "p": f"p-{customer}",
                                      "cur": currency})
        assert earned == {"earnPoints": {"__typename": "EarnPointsSuccess"}}
    return gw, grocery, electronics


async def body(api: Api, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await api.post(query, variables)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def refused(answer: dict[str, Any], code: str, message: str, field: str | None = None,
            path: str = "_entities") -> None:
    """A top-level typed error (``_entities`` and ``_service`` have no result union)."""
    assert answer["data"] is None, answer
    assert [(e["message"], e["path"], e["extensions"]) for e in answer["errors"]] == [
        (message, [path], {"code": code, "field": field})]


# --- isolation ---------------------------------------------------------------------------------

async def test_entities_own_other_partners_and_unknown_customer_ids(tmp_path: Path) -> None:
    gw, grocery, electronics = await world(tmp_path)
    member = member_id_of(gw, "grocery", "g-1")
    before = ledger_snapshot(gw)
    reps = [rep("g-1"), rep("e-solo"), rep("e-7"), rep("never-seen"), rep("g-1")]
    answer = await body(grocery, ENTITIES, {"r": reps})
    g1 = {"__typename": "Member", "customerId": "g-1",
          "memberReference": reference_for(gw.services.engine, gw.services.clock, "grocery",
                                           member),
          "balance": {"available": 170},  # one wallet across brands: 120 here + 50 there
          "history": {"edges": [{"node": {"kind": "earn", "points": 120}}]}}  # ours alone
    assert answer == {"data": {"_entities": [g1, None, None, None, g1]}}
    # The entity is exactly what member(customerId:) answers for that id.
    direct = await grocery.gql(MEMBER, {"c": "g-1"})
    assert {**direct["member"], "__typename": "Member"} == g1
    # The electronics shop gets the same person under its own id and its own reference.
    theirs = await body(electronics, ENTITIES, {"r": [rep("e-7"), rep("g-1")]})
    e7 = theirs["data"]["_entities"][0]
    assert theirs == {"data": {"_entities": [e7, None]}}
    assert e7["customerId"] == "e-7" and e7["balance"] == {"available": 170}
    assert e7["memberReference"] not in (g1["memberReference"], member)
    assert e7["history"] == {"edges": [{"node": {"kind": "earn", "points": 50}}]}
    assert await body(grocery, ENTITIES, {"r": []}) == {"data": {"_entities": []}}
    assert ledger_snapshot(gw) == before


# --- scopes and token kinds --------------------------------------------------------------------

async def test_entities_and_service_need_members_read_and_a_partner_token(tmp_path: Path
                                                                          ) -> None:
    gw, _, _ = await world(tmp_path)
    lacking = await partner_api(gw, "grocery", PARTNER_SCOPES - {"members:read"})
    only = await partner_api(gw, "grocery", {"members:read"}, name="members:read only")
    member = member_api(gw, member_id_of(gw, "grocery", "g-1"))
    before = ledger_snapshot(gw)
    scope = "this token lacks the scope 'members:read' that this field needs"
    for api in (lacking, member):
        refused(await body(api, ENTITIES, {"r": [rep("g-1")]}), "FORBIDDEN", scope)
        refused(await body(api, SDL), "FORBIDDEN", scope, path="_service")
    entities = await body(only, ENTITIES, {"r": [rep("g-1")]})
    assert entities["data"]["_entities"][0]["customerId"] == "g-1"
    assert await body(only, SDL) == {"data": {"_service": {
        "sdl": SUBGRAPH_FILE.read_text(encoding="utf-8")}}}
    assert ledger_snapshot(gw) == before


async def test_service_sdl_is_the_subgraph_file_with_key_and_link(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    sdl = (await grocery.gql(SDL))["_service"]["sdl"]
    assert sdl == SUBGRAPH_FILE.read_text(encoding="utf-8")
    assert sdl.startswith('schema @link(url: "https://specs.apollo.dev/federation/v2.5", '
                          'import: ["@key"]) {')
    assert 'type Member @key(fields: "customerId") {' in sdl
    for plumbing in ("_entities", "_service", "_Any", "_Entity", "_Service"):
        assert plumbing not in sdl


async def test_service_is_off_where_introspection_is_off(tmp_path: Path) -> None:
    grocery = await partner_api(make_gateway(tmp_path, production=True), "grocery")
    refused(await body(grocery, SDL), "FORBIDDEN", "the subgraph SDL is served only where "
            "introspection is on; compose from schema.subgraph.graphql", path="_service")
    assert (await body(grocery, ENTITIES, {"r": [rep("nobody")]})) == {
        "data": {"_entities": [None]}}  # entities are served in production


# --- limits -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("representation", "message", "field"), [
    ({"customerId": "g-1"}, 'representations[1] must be {__typename: "Member", customerId: '
     '...}', "representations[1]"),
    ({"__typename": "Customer", "customerId": "g-1"}, 'representations[1] must be {__typename: '
     '"Member", customerId: ...}', "representations[1]"),
    ("g-1", 'representations[1] must be {__typename: "Member", customerId: ...}',
     "representations[1]"),
    (rep(7), "representations[1].customerId must be a non-empty string",
     "representations[1].customerId"),
    (rep(""), "representations[1].customerId must be a non-empty string",
     "representations[1].customerId"),
    (rep("x" * 129), "representations[1].customerId must be at most 128 characters",
     "representations[1].customerId"),
    (rep("g-\x001"), "representations[1].customerId must not contain NUL characters (U+0000)",
     "representations[1].customerId"),
], ids=["no typename", "other typename", "not an object", "number id", "empty id", "long id",
        "NUL"])
async def test_a_bad_representation_is_invalid_input(tmp_path: Path, representation: Any,
                                                     message: str, field: str) -> None:
    gw, grocery, _ = await world(tmp_path)
    before = ledger_snapshot(gw)
    answer = await body(grocery, ENTITIES, {"r": [rep("g-1"), representation]})
    refused(answer, "INVALID_INPUT", message, field)
    assert ledger_snapshot(gw) == before


async def test_representations_are_capped_like_every_list(tmp_path: Path) -> None:
    gw, grocery, _ = await world(tmp_path)
    before = ledger_snapshot(gw)
    at_cap = await body(grocery, ENTITIES, {"r": [rep("g-1")] + [rep(f"n-{i}") for i in range(99)]})
    assert len(at_cap["data"]["_entities"]) == 100 and at_cap["data"]["_entities"][1] is None
    over = await body(grocery, ENTITIES, {"r": [rep(f"n-{i}") for i in range(101)]})
    refused(over, "INVALID_INPUT", "at most 100 representations per request", "representations")
    assert ledger_snapshot(gw) == before


async def test_page_size_and_aliases_hold_under_entities(tmp_path: Path) -> None:
    _, grocery, _ = await world(tmp_path)
    deep = """query($r: [_Any!]!) { _entities(representations: $r) {
      ... on Member { history(first: 101) { edges { cursor } } } } }"""
    answer = await body(grocery, deep, {"r": [rep("g-1")]})
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in answer["errors"]] == [
        ("INVALID_INPUT", "first")]
    assert "first must be between 1 and 100" in answer["errors"][0]["message"]
    many = " ".join(f'a{i}: _entities(representations: [{{__typename: "Member", '
                    f'customerId: "g-1"}}]) {{ __typename }}' for i in range(16))
    over = await body(grocery, "{ " + many + " }")
    assert over == {"data": None, "errors": [{"message": "16 aliases found. Allowed: 15"}]}
