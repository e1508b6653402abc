"""A campaign's per-member limits after a merge (decision 037), through the partner GraphQL API
and the member's ``mergeAccount``, on this run's backend: the survivor's usage counts the awards
of every account merged into it, and a return after the merge writes its reversal under the
member the award went to, so the sums stay whole (never negative). Before the fix the survivor
counted only its own rows: a lifetime limit of one reward let it have the reward again, and a
return of the absorbed account's purchase put its -1 on the survivor, giving it room back.

The grocery earns 1 point per 10.00 UAH; the campaign gives 30 points once per member, ever."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from gateway.app import Gateway
from gateway.db import tables as t
from gateway.ledger.verify import verify_ledger
from tests.api.test_mechanics import applied, create, earn, grocery, member_of, skipped
from tests.api.test_merge_proof import merge
from tests.support.harness import Api, make_gateway
from tests.support.members import card_of, give_activation_code

pytestmark = pytest.mark.anyio

CAMPAIGN = "grocery:once"
RETURN = """mutation($input: ReturnPurchaseInput!) { returnPurchase(input: $input) {
  __typename ... on ReturnPurchaseSuccess { pointsReversed available }
  ... on Error { code message field } } }"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def world(tmp_path: Path) -> tuple[Gateway, Api, str, str]:
    """The grocery with customers c-a (member A) and c-b (member B), and the campaign."""
    gw = make_gateway(tmp_path)
    api = await grocery(gw, "c-a", "c-b")
    await create(api, id="once", name="30 points once per member",
                 limits={"perMember": [{"window": "LIFETIME", "count": 1}]},
                 effects=[{"bonusPoints": {"points": 30}}])
    return gw, api, member_of(gw, "c-a"), member_of(gw, "c-b")


async def merge_b_into_a(gw: Gateway, a: str, b: str) -> None:
    done = await merge(gw, a, "merge-b", card=card_of(gw, b), code=give_activation_code(gw, b))
    assert done["__typename"] == "MergeAccountSuccess", done


async def give_back(api: Api, purchase: str, key: str) -> dict[str, Any]:
    answer: dict[str, Any] = (await api.gql(RETURN, {"input": {
        "purchaseId": purchase, "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "idempotencyKey": key}}))["returnPurchase"]
    return answer


def awards_by_member(gw: Gateway) -> dict[str, tuple[int, int]]:
    """The campaign's promotion_awards summed per member: (points, rewards)."""
    with gw.services.engine.connect() as conn:
        rows = conn.execute(
            select(t.promotion_awards.c.member_id, func.sum(t.promotion_awards.c.points),
                   func.sum(t.promotion_awards.c.rewards))
            .where(t.promotion_awards.c.campaign_id == CAMPAIGN)
            .group_by(t.promotion_awards.c.member_id)).all()
    return {str(m): (int(p), int(r)) for m, p, r in rows}


async def test_a_lifetime_reward_earned_by_the_absorbed_account_is_not_given_again(
        tmp_path: Path) -> None:
    gw, api, a, b = await world(tmp_path)
    before = await earn(api, "p-b", customer="c-b")
    assert applied(before) == [(CAMPAIGN, "grocery", 30)]
    await merge_b_into_a(gw, a, b)

    after = await earn(api, "p-a", customer="c-a")
    assert (after["points"], after["bonusPoints"], after["promotions"]) == (120, 0, [])
    assert skipped(after) == [(CAMPAIGN, "member_limit")]
    assert after["skippedPromotions"][0]["explanation"].endswith(
        "member limit of 1 per lifetime reached (1 given)")
    assert awards_by_member(gw) == {b: (30, 1)}


async def test_a_return_of_the_absorbed_accounts_purchase_gives_the_survivor_no_room(
        tmp_path: Path) -> None:
    gw, api, a, b = await world(tmp_path)
    assert applied(await earn(api, "p-a", customer="c-a")) == [(CAMPAIGN, "grocery", 30)]
    assert applied(await earn(api, "p-b", customer="c-b")) == [(CAMPAIGN, "grocery", 30)]
    await merge_b_into_a(gw, a, b)

    # B's purchase returned whole: its 120 base points and 30 bonus come back from the one
    # wallet (150 + 150 -> 150).
    returned = await give_back(api, "p-b", "ret-b")
    assert returned == {"__typename": "ReturnPurchaseSuccess", "pointsReversed": 150,
                        "available": 150}

    # A's own award stands: the survivor has used its one reward (usage 1, not 0).
    again = await earn(api, "p-a2", customer="c-a")
    assert (again["points"], again["bonusPoints"], again["promotions"]) == (120, 0, [])
    assert skipped(again) == [(CAMPAIGN, "member_limit")]
    assert again["skippedPromotions"][0]["explanation"].endswith(
        "member limit of 1 per lifetime reached (1 given)")
    # The reversal is written under the member its award went to: B's rows sum to 0, A's
    # to its one reward, whichever member set is summed.
    assert awards_by_member(gw) == {a: (30, 1), b: (0, 0)}

    # Once A's own rewarded purchase is returned too, nothing is used: the reward is theirs again.
    assert (await give_back(api, "p-a", "ret-a"))["pointsReversed"] == 150
    third = await earn(api, "p-a3", customer="c-a")
    assert applied(third) == [(CAMPAIGN, "grocery", 30)]
    assert awards_by_member(gw) == {a: (30, 1), b: (0, 0)}
    assert verify_ledger(gw.services.engine).problems == []


@contextmanager
def statements(gw: Gateway) -> Iterator[list[str]]:
    """The SQL the gateway's engine runs meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_only_an_earn_with_a_member_limit_reads_the_merged_accounts(
        tmp_path: Path) -> None:
    """The hot path: an earn whose campaigns have no member limit reads neither the merged
    accounts nor the usage; with one, one read of each (the usage over the member set)."""
    gw = make_gateway(tmp_path)
    api = await grocery(gw, "c-a")
    await create(api, id="open", name="5 points, no limit",
                 effects=[{"bonusPoints": {"points": 5}}])
    with statements(gw) as seen:
        await earn(api, "p-1", customer="c-a")
    assert [q for q in seen if "merged_into" in q or "FROM promotion_awards" in q] == []
    await create(api, id="once", name="30 points once per member",
                 limits={"perMember": [{"window": "LIFETIME", "count": 1}]},
                 effects=[{"bonusPoints": {"points": 30}}])
    with statements(gw) as seen:
        assert applied(await earn(api, "p-2", customer="c-a")) == [
            (CAMPAIGN, "grocery", 30), ("grocery:open", "grocery", 5)]
    assert (sum("merged_into IN" in q for q in seen),
            sum("FROM promotion_awards" in q for q in seen)) == (1, 1)
