"""Returns of an earn that applied campaigns (decision 020, docs/decisions/024), on the pure
planner: over any sequence of partial returns, with any wallet and any debt policy, every step
balances per account, each funder is paid back at most its awards, and a purchase returned in
full gives the issued account exactly the base points and each funder exactly its awards
(recovered or unrecovered, never more); the award rows of the last return carry rewards -1."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import given, settings

from gateway.ledger.chart import MEMBER_KINDS, AccountKind
from gateway.ledger.model import AppliedPromotion, Returned
from gateway.ledger.planners import MemberState, OpenLot, ReturnInput, plan_return
from gateway.ledger.repository import Account
from tests.property.test_return_rounding import return_parts
from tests.support.harness import NOW


@settings(max_examples=400, deadline=None)
@given(data=st.data(), base=st.integers(0, 10**5), amount=st.integers(1, 10**8),
       bonuses=st.lists(st.integers(0, 10**4), min_size=1, max_size=4), negative=st.booleans())
def test_each_award_is_paid_back_to_its_funder(data: st.DataObject, base: int, amount: int,
                                                bonuses: list[int], negative: bool) -> None:
    earned = base + sum(bonuses)
    wallet = data.draw(st.integers(0, earned), label="wallet")
    parts = data.draw(return_parts(amount), label="parts")
    accounts = {kind: Account(i + 1, f"member:m:{kind}", kind)
                for i, kind in enumerate(MEMBER_KINDS)}
    issued = Account(100, "partner:p:issued", AccountKind.ISSUED)
    redeemed = Account(101, "partner:p:redeemed", AccountKind.REDEEMED)
    funders = {"p": Account(102, "partner:p:promotions", AccountKind.PROMOTIONS),
               "coalition": Account(103, "coalition:bonus", AccountKind.BONUS)}
    awards = tuple(AppliedPromotion(f"c{i}", 1, "p" if i % 2 else "coalition", points, "x")
                   for i, points in enumerate(bonuses))
    far = NOW + timedelta(days=300)
    prior: tuple[Returned, ...] = ()
    debt = 0
    received: Counter[int] = Counter()
    rewards: list[int] = []
    for n, part in enumerate(parts):
        state = MemberState("m", accounts, {AccountKind.WALLET: wallet, AccountKind.HELD: 0,
                                            AccountKind.PENDING: 0, AccountKind.DEBT: -debt})
        request = ReturnInput(
            "p", "UAH", "buy", part, f"k{n}", "fp", NOW, f"op{n}", "op-earn", base, amount,
            prior, 0, negative, None, (OpenLot(1, "p", wallet, far),), frozenset({1}),
            awards=awards, funders=funders, budgeted=frozenset({"c0"}))
        plan = plan_return(state, issued, redeemed, request)
        (posting,) = plan.postings
        net: Counter[int] = Counter()
        for move in posting.moves:
            assert move.amount > 0
            net[move.debit.id] -= move.amount
            net[move.credit.id] += move.amount
        assert sum(net.values()) == 0
        received.update({k: v for k, v in net.items() if k >= 100})
        result = plan.result
        assert min(r.points for r in result.promotions_reversed) >= 0 \
            if result.promotions_reversed else True
        # Award rows mirror the shares; counters move only for the budgeted campaign.
        assert {r.campaign_id: -r.points for r in posting.awards if r.points} == {
            r.campaign_id: r.points for r in result.promotions_reversed}
        assert {c for c, _, _ in posting.counters} <= {"c0"}
        rewards = [r.rewards for r in posting.awards]
        wallet, debt, prior = result.available, result.debt, (*prior, result)
    per_award = Counter[str]()
    for p in prior:
        for r in p.promotions_reversed:
            per_award[r.campaign_id] += r.points
    by_funder = {"p": 0, "coalition": 0}
    for award in awards:
        assert per_award[award.campaign_id] <= award.points
        by_funder[award.funder] += award.points
    assert received[100] <= base
    assert received[102] <= by_funder["p"] and received[103] <= by_funder["coalition"]
    total_reversed = sum(p.points_reversed_total for p in prior)
    if sum(parts) == amount:
        assert {a.campaign_id: a.points for a in awards if a.points} == {
            k: v for k, v in per_award.items() if v}
        assert total_reversed == earned
        assert rewards == [-1] * len(awards)
        unrecovered = sum(p.points_unrecovered for p in prior)
        assert received[100] + received[102] + received[103] == earned - unrecovered
        if unrecovered == 0:
            assert (received[100], received[102], received[103]) == (
                base, by_funder["p"], by_funder["coalition"])
