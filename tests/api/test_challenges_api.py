"""Challenges over GraphQL on this run's backend: the grocery defines its own challenge
(strict input, errors naming the field; immutable once started), the member reads
``viewer.challenges`` and ``viewer.badges`` after real earns whose events the consumer handled,
and the grocery reads its counts, never the coalition's challenges nor other brands'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.clock import FixedClock
from gateway.db import tables as t
from tests.support.challenges import Drain, count, define
from tests.support.harness import make_gateway, partner_api
from tests.support.members import member_api, member_id_of

pytestmark = pytest.mark.anyio

ERRORS = "... on Error { __typename code message field }"
DEFINE = f"""mutation($input: ChallengeInput!) {{ defineChallenge(input: $input) {{ __typename
  ... on DefineChallengeSuccess {{ challenge {{ id version target minSpend {{ amountMinor
  currency }} }} }} {ERRORS} }} }}"""
LIST = f"""{{ challenges {{ __typename ... on ChallengeList {{ challenges {{ id name
  membersInProgress membersCompleted }} }} {ERRORS} }} }}"""
VIEWER = """{ viewer { ... on Viewer {
  challenges { id name owner window done target windowEndsAt bonusPoints badge completed }
  badges { badge times firstAwardedAt } } } }"""
ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) { __typename } }"""
EARN = """mutation($c: ID!, $amount: MinorUnits!, $p: String!) { earnPoints(input: {
  customerId: $c, amount: {amountMinor: $amount, currency: "UAH"}, channel: STORE,
  purchaseId: $p, idempotencyKey: $p}) { ... on EarnPointsSuccess { points } } }"""
CHALLENGE = {"id": "big-four", "name": "4 purchases over 20.00 this month", "badge": "regular",
             "bonusPoints": 40, "window": "MONTH", "count": "PURCHASES", "target": 2,
             "minSpend": {"amountMinor": 2000, "currency": "UAH"},
             "startsAt": "2026-11-01T00:00:00+00:00"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_partner_defines_its_challenge_and_a_member_sees_progress_and_badges(
        tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 10, tzinfo=UTC))
    gw = make_gateway(tmp_path, clock=clock)
    grocery = await partner_api(gw, "grocery")
    fuel = await partner_api(gw, "fuel")
    refused: list[tuple[dict[str, Any], str]] = [
        ({**CHALLENGE, "target": 0}, "target"),
        ({**CHALLENGE, "minSpend": {"amountMinor": 2000, "currency": "uah"}},
         "minSpend.currency"),
        ({**CHALLENGE, "count": "BRANDS"}, "count"),
        ({**CHALLENGE, "days": 30}, "days"),
        ({**CHALLENGE, "bonusPoints": -1}, "bonusPoints"),
    ]
    for bad, field in refused:
        answer = (await grocery.gql(DEFINE, {"input": bad}))["defineChallenge"]
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "InvalidInputError", "INVALID_INPUT", field), bad
    assert count(gw, t.challenges) == 0
    made = (await grocery.gql(DEFINE, {"input": CHALLENGE}))["defineChallenge"]
    assert made == {"__typename": "DefineChallengeSuccess", "challenge": {
        "id": "big-four", "version": 1, "target": 2,
        "minSpend": {"amountMinor": 2000, "currency": "UAH"}}}
    changed = (await grocery.gql(DEFINE, {"input": {**CHALLENGE, "bonusPoints": 80}}))
    assert changed["defineChallenge"]["code"] == "CHALLENGE_STARTED"
    define(gw, id="three-brands", name="3 brands", badge="explorer", bonus_points=150,
           window="month", count="brands", target=3)

    await grocery.gql(ENROL, {"c": "g-1"})
    member = member_id_of(gw, "grocery", "g-1")
    me = member_api(gw, member)
    drain = Drain(gw, clock)
    await grocery.gql(EARN, {"c": "g-1", "amount": 2_500, "p": "p1"})
    await grocery.gql(EARN, {"c": "g-1", "amount": 1_000, "p": "p2"})  # under the minimum
    drain()
    view = (await me.gql(VIEWER))["viewer"]
    assert view["challenges"] == [
        {"id": "grocery:big-four", "name": "4 purchases over 20.00 this month",
         "owner": "grocery", "window": "MONTH", "done": 1, "target": 2,
         "windowEndsAt": "2026-12-01T00:00:00+00:00", "bonusPoints": 40, "badge": "regular",
         "completed": False},
        {"id": "three-brands", "name": "3 brands", "owner": "coalition", "window": "MONTH",
         "done": 1, "target": 3, "windowEndsAt": "2026-12-01T00:00:00+00:00",
         "bonusPoints": 150, "badge": "explorer", "completed": False}]
    assert view["badges"] == []
    listed = (await grocery.gql(LIST))["challenges"]["challenges"]
    assert listed == [{"id": "big-four", "name": "4 purchases over 20.00 this month",
                       "membersInProgress": 1, "membersCompleted": 0}]
    clock.advance(timedelta(minutes=2))  # (tokens live minutes)
    await grocery.gql(EARN, {"c": "g-1", "amount": 3_000, "p": "p3"})
    drain()
    view = (await me.gql(VIEWER))["viewer"]
    mine = view["challenges"][0]
    assert (mine["done"], mine["completed"]) == (2, True)
    assert view["badges"] == [{"badge": "regular", "times": 1,
                               "firstAwardedAt": "2026-11-02T10:02:00+00:00"}]
    listed = (await grocery.gql(LIST))["challenges"]["challenges"]
    assert (listed[0]["membersInProgress"], listed[0]["membersCompleted"]) == (0, 1)
    # Another brand sees none of it (and the coalition's challenge is nobody's to list).
    assert (await fuel.gql(LIST))["challenges"] == {"__typename": "ChallengeList",
                                                   "challenges": []}
