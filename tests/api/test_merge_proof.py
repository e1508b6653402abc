"""mergeAccount's proof of the second account (issue 10, round 2): card number + activation
code tries are rate limited per member and per source address like link codes; the second
account's sign-in (email + password) is accepted too, and spends the very budgets the portal's
sign-in spends. Every refusal leaves both accounts as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.errors import RateLimited
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer, sign_up
from gateway.members.credentials import sign_in
from gateway.members.guesses import CodeGuesses
from tests.support.harness import make_gateway
from tests.support.members import card_of, give_activation_code, member_api

MERGE = """mutation($k: String!, $card: String, $code: String, $email: String, $pw: String) {
  mergeAccount(idempotencyKey: $k, cardNumber: $card, activationCode: $code, email: $email,
               password: $pw) {
    __typename ... on MergeAccountSuccess { walletMoved brandsMoved }
    ... on Error { code message field } } }"""
PASSWORD = "correct horse battery"


def state(gw: Gateway, *member_ids: str) -> list[tuple[str, str | None]]:
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.members.c.status, t.members.c.merged_into)
                            .where(t.members.c.id.in_(member_ids))
                            .order_by(t.members.c.id)).all()
    return [(str(r[0]), r[1]) for r in rows]


async def merge(gw: Gateway, member_id: str, key: str, **proof: str) -> dict[str, Any]:
    data = await member_api(gw, member_id).gql(MERGE, {"k": key, **proof})
    result: dict[str, Any] = data["mergeAccount"]
    return result


async def test_card_guesses_are_limited_per_member(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    engine, clock = gw.services.engine, gw.services.clock
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = enrol_customer(engine, clock, "fuel", "f-b").member_id
    card, code = card_of(gw, b), give_activation_code(gw, b)
    before = state(gw, a, b)
    for i in range(5):
        wrong = await merge(gw, a, f"k-{i}", card=card, code="WRONGCOD")
        assert (wrong["__typename"], wrong["code"], wrong["field"]) == (
            "NotFoundError", "NOT_FOUND", "cardNumber")
    limited = await merge(gw, a, "k-right", card=card, code=code)
    assert (limited["__typename"], limited["code"]) == ("RateLimitedError", "RATE_LIMITED")
    assert state(gw, a, b) == before
    # Another member's budget is its own: C proves B with the right code.
    c = enrol_customer(engine, clock, "electronics", "e-c").member_id
    done = await merge(gw, c, "k-c", card=card, code=code)
    assert done == {"__typename": "MergeAccountSuccess", "walletMoved": 0,
                    "brandsMoved": ["fuel"]}
    assert state(gw, b) == [("merged", c)]


def test_card_guesses_are_limited_per_source() -> None:
    guesses = CodeGuesses.build()
    for n in range(20):  # the burst, spread over members so none meets its own budget
        guesses.merge_attempt(f"m-{n}", "203.0.113.7")
    with pytest.raises(RateLimited):
        guesses.merge_attempt("m-new", "203.0.113.7")
    guesses.merge_attempt("m-new", "198.51.100.1")  # another source still tries


async def test_the_second_accounts_sign_in_proves_it(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    engine, clock = gw.services.engine, gw.services.clock
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = sign_up(engine, clock, "Second@Example.com", PASSWORD).member_id
    wrong = await merge(gw, a, "k-1", email="second@example.com", pw="not the password")
    assert (wrong["__typename"], wrong["code"], wrong["field"]) == (
        "NotFoundError", "NOT_FOUND", "email")
    unknown = await merge(gw, a, "k-2", email="nobody@example.com", pw=PASSWORD)
    assert (unknown["code"], unknown["message"]) == ("NOT_FOUND", wrong["message"])
    assert state(gw, a, b) == sorted([("active", None), ("active", None)])
    done = await merge(gw, a, "k-3", email=" second@example.com ", pw=PASSWORD)
    assert done["__typename"] == "MergeAccountSuccess"
    assert state(gw, b) == [("merged", a)]


async def test_sign_in_proofs_spend_the_sign_in_budget(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    engine, clock = gw.services.engine, gw.services.clock
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = sign_up(engine, clock, "second@example.com", PASSWORD).member_id
    for i in range(5):
        wrong = await merge(gw, a, f"k-{i}", email="second@example.com", pw=f"wrong {i}")
        assert wrong["code"] == "NOT_FOUND"
    limited = await merge(gw, a, "k-right", email="second@example.com", pw=PASSWORD)
    assert (limited["__typename"], limited["code"]) == ("RateLimitedError", "RATE_LIMITED")
    # The portal's sign-in for that account is out of tries too: one budget, two doors.
    with pytest.raises(RateLimited):
        sign_in(engine, gw.services.sign_in, "second@example.com", PASSWORD, address=None)
    assert state(gw, a, b) == [("active", None), ("active", None)]


@pytest.mark.parametrize("proof", [
    {},
    {"card": "4000000000000002", "code": "ABCDEFGH", "email": "x@example.com", "pw": PASSWORD},
    {"card": "4000000000000002"},
    {"email": "x@example.com"},
])
async def test_exactly_one_whole_proof(tmp_path: Path, proof: dict[str, str]) -> None:
    gw = make_gateway(tmp_path)
    a = enrol_customer(gw.services.engine, gw.services.clock, "grocery", "g-a").member_id
    refused = await merge(gw, a, "k", **proof)
    assert (refused["__typename"], refused["code"]) == ("InvalidInputError", "INVALID_INPUT")
    assert refused["field"] in {"cardNumber", "activationCode", "email", "password"}
    assert state(gw, a) == [("active", None)]
