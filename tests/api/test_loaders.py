"""Per-request DataLoaders (DESIGN §11: one round trip per lookup kind per request).

Statements are counted on the real engine with a ``before_cursor_execute`` listener: a request
with several aliased ``member`` lookups reads the memberships once and the balances once, and
nothing is cached beyond the request (a later request, or another partner, reads afresh)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.api import loaders
from gateway.api.context import Context
from gateway.app import Gateway
from gateway.core.principal import Principal
from gateway.members.secrets import reference_for
from tests.support.harness import Api, make_gateway, partner_api
from tests.support.members import LINK, link_code_for, member_id_of

ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) {
  ... on EnrolCustomerSuccess { member { memberReference } } } }"""
EARN = """mutation($c: ID!, $p: String!) { earnPoints(input: {customerId: $c, amount: {amountMinor:
  120000, currency: "UAH"}, channel: STORE, purchaseId: $p, idempotencyKey: $p}) {
  ... on EarnPointsSuccess { points } } }"""
BALANCE = "... on Member { memberReference balance { available held debt } }"
THREE_LOOKUPS = (f'{{ a: member(customerId: "g-1") {{ {BALANCE} }} '
                 f'b: member(customerId: "g-2") {{ {BALANCE} }} '
                 f'c: member(customerId: "g-1") {{ {BALANCE} }} }}')
ONE_LOOKUP = f'query($c: ID!) {{ member(customerId: $c) {{ {BALANCE} }} }}'

BALANCE_READ = re.compile(r"\bFROM accounts\b")
MEMBERSHIP_READ = re.compile(r"\bFROM linked_accounts\b")


@contextmanager
def statements(gw: Gateway) -> Iterator[list[str]]:
    """Every SQL statement the gateway's engine runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def count(pattern: re.Pattern[str], seen: list[str]) -> int:
    return sum(1 for statement in seen if pattern.search(statement))


async def two_members(tmp_path: Path) -> tuple[Gateway, Api, str, str]:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    first = (await grocery.gql(ENROL, {"c": "g-1"}))["enrolCustomer"]["member"]["memberReference"]
    second = (await grocery.gql(ENROL, {"c": "g-2"}))["enrolCustomer"]["member"]["memberReference"]
    assert (await grocery.gql(EARN, {"c": "g-1", "p": "r-1"}))["earnPoints"] == {"points": 120}
    return gw, grocery, first, second


async def test_aliased_member_lookups_cost_one_balance_query(tmp_path: Path) -> None:
    gw, grocery, first, second = await two_members(tmp_path)
    with statements(gw) as seen:
        data = await grocery.gql(THREE_LOOKUPS)
    one = {"memberReference": first, "balance": {"available": 120, "held": 0, "debt": 0}}
    assert data == {"a": one, "b": {"memberReference": second,
                                    "balance": {"available": 0, "held": 0, "debt": 0}}, "c": one}
    assert count(BALANCE_READ, seen) == 1, seen
    assert count(MEMBERSHIP_READ, seen) == 1, seen


async def test_loader_cache_lives_for_one_request_only(tmp_path: Path) -> None:
    gw, grocery, first, _ = await two_members(tmp_path)
    with statements(gw) as seen:
        before = await grocery.gql(ONE_LOOKUP, {"c": "g-1"})
    assert before["member"] == {"memberReference": first,
                                "balance": {"available": 120, "held": 0, "debt": 0}}
    assert count(BALANCE_READ, seen) == 1

    assert (await grocery.gql(EARN, {"c": "g-1", "p": "r-2"}))["earnPoints"] == {"points": 120}
    with statements(gw) as seen:
        after = await grocery.gql(ONE_LOOKUP, {"c": "g-1"})
    assert after["member"] == {"memberReference": first,  # not the 120 a shared cache would hold
                               "balance": {"available": 240, "held": 0, "debt": 0}}
    assert count(BALANCE_READ, seen) == 1
    assert count(MEMBERSHIP_READ, seen) == 1


async def test_another_partner_gets_its_own_loaders(tmp_path: Path) -> None:
    gw, grocery, first, _ = await two_members(tmp_path)
    electronics = await partner_api(gw, "electronics")
    linked = await electronics.gql(LINK, {"c": "e-7",
                                          "code": link_code_for(gw, "grocery", "g-1")})
    assert linked["linkCustomer"]["__typename"] == "LinkCustomerSuccess"
    await grocery.gql(ONE_LOOKUP, {"c": "g-1"})  # warms the grocery request's loaders
    with statements(gw) as seen:
        theirs = await electronics.gql(ONE_LOOKUP, {"c": "e-7"})
        missing = await electronics.gql(ONE_LOOKUP, {"c": "g-1"})  # a grocery customer id
    member = member_id_of(gw, "grocery", "g-1")
    theirs_ref = reference_for(gw.services.engine, gw.services.clock, "electronics", member)
    assert theirs_ref != first
    assert theirs == {"member": {"memberReference": theirs_ref,
                                 "balance": {"available": 120, "held": 0, "debt": 0}}}
    assert missing == {"member": {}}  # UnknownMemberError: no Member fields selected
    assert count(BALANCE_READ, seen) == 1
    assert count(MEMBERSHIP_READ, seen) == 2


def test_every_context_builds_its_own_loaders(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    principal = Principal(client_id="c", partner_id="grocery", scopes=frozenset())
    one, two = Context(gw.services, principal), Context(gw.services, principal)
    assert one.loaders is not two.loaders
    assert one.loaders.balances is not two.loaders.balances
    assert one.loaders.memberships is not two.loaders.memberships


async def test_membership_and_balance_are_read_in_one_thread_hop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gw, grocery, first, _ = await two_members(tmp_path)
    hops: list[str] = []
    real_read = loaders._in_thread

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(fn.__name__)
        return await real_read(fn, *args)

    monkeypatch.setattr(loaders, "_in_thread", counted)
    balance = {"available": 120, "held": 0, "debt": 0}
    spread = ("query($c: ID!) { member(customerId: $c) { ...M } } "
              "fragment M on Member { memberReference balance { available held debt } }")
    for query in (ONE_LOOKUP, spread):  # an inline fragment, a named fragment
        hops.clear()
        with statements(gw) as seen:
            data = await grocery.gql(query, {"c": "g-1"})
        assert data == {"member": {"memberReference": first, "balance": balance}}
        assert hops == ["_memberships_with_balances"]
        assert count(BALANCE_READ, seen) == 1 and count(MEMBERSHIP_READ, seen) == 1

    hops.clear()
    with statements(gw) as seen:  # no balance asked for: none read
        data = await grocery.gql(
            'query { member(customerId: "g-1") { ... on Member { memberReference } } }')
    assert data == {"member": {"memberReference": first}}
    assert hops == ["find_memberships"]
    assert count(BALANCE_READ, seen) == 0
