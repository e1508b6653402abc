"""The referrer's side of returns (decision 035), on the pure planner: over any sequence of
partial returns and any referrer wallet (spent down between returns), each step takes at most
what the wallet holds and never makes debt, balances per account, pays each funder back at most
its awards, and its award rows mirror its shares; the shares of a purchase returned in full add
up to the whole reward exactly (recovered plus unrecovered), each the CEIL of its cumulative
proportion, and only the return that completes the purchase carries rewards -1."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import given, settings

from gateway.core.money import Rounding
from gateway.ledger.chart import MEMBER_KINDS, AccountKind
from gateway.ledger.model import AppliedPromotion, ReferralReversed
from gateway.ledger.planners import MemberState, OpenLot, ReferralReturnInput, plan_referral_return
from gateway.ledger.repository import Account
from partners.rules import proportional_points
from tests.property.test_return_rounding import return_parts
from tests.support.harness import NOW


@settings(max_examples=300, deadline=None)
@given(data=st.data(), amount=st.integers(1, 10**8),
       rewards=st.lists(st.integers(0, 10**4), min_size=1, max_size=3))
def test_referrer_shares_add_up_and_never_make_debt(data: st.DataObject, amount: int,
                                                     rewards: list[int]) -> None:
    reward = sum(rewards)
    wallet = data.draw(st.integers(0, reward), label="wallet")
    parts = data.draw(return_parts(amount, full=True), label="parts")
    accounts = {kind: Account(i + 1, f"member:r:{kind}", kind)
                for i, kind in enumerate(MEMBER_KINDS)}
    funders = {"p": Account(102, "partner:p:promotions", AccountKind.PROMOTIONS),
               "coalition": Account(103, "coalition:bonus", AccountKind.BONUS)}
    awards = tuple(AppliedPromotion(f"c{i}", 1, "p" if i % 2 else "coalition", points, "x")
                   for i, points in enumerate(rewards))
    far = NOW + timedelta(days=300)
    prior: tuple[ReferralReversed, ...] = ()
    received: Counter[int] = Counter()
    returned = 0
    for n, part in enumerate(parts):
        returned += part
        spent = data.draw(st.integers(0, wallet), label=f"spent before return {n}")
        wallet -= spent
        state = MemberState("r", accounts, {AccountKind.WALLET: wallet, AccountKind.HELD: 0,
                                            AccountKind.PENDING: 0, AccountKind.DEBT: 0})
        request = ReferralReturnInput(
            f"op{n}r0", "op-earnr0", "p", awards, prior, returned, amount,
            (OpenLot(1, "p", wallet, far),) if wallet else (), frozenset({1}), funders,
            frozenset({"c0"}), frozenset({"c1"}), NOW)
        plan = plan_referral_return(state, request)
        due = sum(proportional_points(a.points, returned, amount, Rounding.CEIL)
                  for a in awards) - sum(
            p.points_reversed + p.points_unrecovered for p in prior)
        if plan is None:
            assert due == 0 and returned < amount
            continue
        (posting,) = plan.postings
        result = plan.result
        assert result.points_reversed + result.points_unrecovered == due
        assert 0 <= result.points_reversed <= wallet
        assert posting.record is not None and posting.record.points == -result.points_reversed
        net: Counter[int] = Counter()
        for move in posting.moves:
            assert move.amount > 0 and move.debit.kind is AccountKind.WALLET
            net[move.debit.id] -= move.amount
            net[move.credit.id] += move.amount
        assert sum(net.values()) == 0
        assert sum(t.points for t in posting.lot_moves) == -result.points_reversed
        received.update({k: v for k, v in net.items() if k >= 100})
        assert {r.campaign_id: -r.points for r in posting.awards if r.points} == {
            r.campaign_id: r.points for r in result.promotions_reversed}
        complete = returned == amount
        assert {r.rewards for r in posting.awards} <= ({-1} if complete else {0})
        # The earn counted one reward for a campaign that rewarded the purchaser too (c1).
        assert all(c == "c0" for c, _, _ in posting.counters)
        assert all(n_rewards == (-1 if complete else 0) for _, _, n_rewards in posting.counters)
        wallet -= result.points_reversed
        prior = (*prior, result)
    per_award = Counter[str]()
    for p in prior:
        for r in p.promotions_reversed:
            per_award[r.campaign_id] += r.points
    assert per_award == Counter({a.campaign_id: a.points for a in awards if a.points})
    by_funder = {"p": 0, "coalition": 0}
    for award in awards:
        by_funder[award.funder] += award.points
    assert received[102] <= by_funder["p"] and received[103] <= by_funder["coalition"]
    assert sum(p.points_reversed + p.points_unrecovered for p in prior) == reward
