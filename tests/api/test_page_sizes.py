"""A page size out of range anywhere in an operation refuses the whole request before anything
runs (gateway/api/pages.py): a mutation that commits always returns its answer (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.db import tables as t
from tests.support.harness import ledger_snapshot, make_gateway, partner_api

# The exact request schemathesis found: it enrolled the customer, then answered data: null.
NESTED = """mutation { enrolCustomer(input: {customerId: "__main__"}) {
  ... on EnrolCustomerSuccess { member { history(first: 190) { edges { cursor } } } } } }"""
BY_VARIABLE = """mutation($n: Int!) { enrolCustomer(input: {customerId: "c-9"}) {
  ... on EnrolCustomerSuccess { member { ...Page } } } }
fragment Page on Member { history(first: $n) { edges { cursor } } }"""


def members(gw: object) -> int:
    with gw.services.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(t.members)).scalar_one())


async def test_a_nested_page_out_of_range_refuses_the_mutation_before_it_runs(
        tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    before = ledger_snapshot(gw), members(gw)

    answer = (await grocery.post(NESTED)).json()

    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": "first"}
    assert error["message"] == "first must be between 1 and 100"
    assert (ledger_snapshot(gw), members(gw)) == before  # nobody was enrolled


@pytest.mark.parametrize(("n", "runs"), [(0, False), (101, False), (100, True), (1, True)])
async def test_page_sizes_through_variables_and_fragments(tmp_path: Path, n: int,
                                                           runs: bool) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    before = members(gw)

    answer = (await grocery.post(BY_VARIABLE, {"n": n})).json()

    if runs:
        assert answer == {"data": {"enrolCustomer": {"member": {"history": {"edges": []}}}}}
        assert members(gw) == before + 1
    else:
        assert answer["data"] is None and answer["errors"][0]["extensions"]["field"] == "first"
        assert members(gw) == before
