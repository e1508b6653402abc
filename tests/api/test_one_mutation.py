"""A mutation operation runs one mutation: seventeen in one document were seventeen write
transactions charged once against the rate limit (issue 9, item 3)."""

from __future__ import annotations

from pathlib import Path

from tests.support.harness import ledger_snapshot, make_gateway, partner_api

ENROL = 'e%d: enrolCustomer(input: {customerId: "c-%d"}) { __typename }'


async def test_several_mutations_in_one_operation_run_none(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    before = ledger_snapshot(gw)
    many = "mutation { " + " ".join(ENROL % (n, n) for n in range(5)) + " }"

    answer = (await grocery.post(many)).json()

    assert answer.get("data") is None
    [error] = answer["errors"]
    assert error["message"].startswith("a mutation operation may run one mutation, this one "
                                       "has 5 (e0, e1, e2, e3, e4)")
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert ledger_snapshot(gw) == before
    member = '{ member(customerId: "c-0") { __typename } }'
    assert (await grocery.gql(member))["member"]["__typename"] == "UnknownMemberError"


async def test_fragments_count_too_and_one_mutation_with_typename_runs(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    hidden = ("mutation { __typename ...More " + ENROL % (1, 1) + " } "
              "fragment More on Mutation { " + ENROL % (2, 2) + " }")
    assert (await grocery.post(hidden)).json()["data"] is None

    one = "mutation { __typename " + ENROL % (3, 3) + " }"
    assert (await grocery.gql(one)) == {"__typename": "Mutation",
                                        "e3": {"__typename": "EnrolCustomerSuccess"}}


async def test_queries_still_select_many_fields(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    both = ('{ a: member(customerId: "x") { __typename } '
            'b: member(customerId: "y") { __typename } }')
    assert (await grocery.gql(both)) == {"a": {"__typename": "UnknownMemberError"},
                                         "b": {"__typename": "UnknownMemberError"}}
