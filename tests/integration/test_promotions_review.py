"""Issue 12 review (p13-review): replays, concurrent returns and the lock order of a return that
gives back a coupon and releases a funder, on this run's real database.

An earn at grocery of 1,200.00 UAH (120 base points) presents a coupon that unlocks a 200-point
bonus with a budget (a counter) funded by grocery's prepaid account (10,000 points). Replaying
the earn or the full return with the same key changes nothing; five concurrent full returns of
the purchase give the coupon back once and release the funder once; and a full return takes
the coupon's row before the counters and the funder (lock order: purchase, member, coupons,
counters, funders), as the earn does, so an earn presenting the coupon and a return giving it
back cannot wait on each other on PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from gateway.app import Gateway
from gateway.core.errors import NothingToReturn
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.member_ops import merge_members
from gateway.ledger.model import Earned, EarnPoints, RedeemPoints, Returned, ReturnPurchase
from gateway.ledger.service import earn_points, redeem_points, return_purchase
from gateway.ledger.verify import verify_ledger
from gateway.promotions import funding, referrals
from gateway.promotions.coupon_issue import CouponTerms, issue_coupons
from gateway.promotions.coupons import normalise
from gateway.promotions.funding import FundingMode, FundingPolicy
from gateway.promotions.model import CouponPresented, ReferralInEffect, ReferralReward
from tests.integration.test_concurrency import race, warm_pool
from tests.integration.test_coupon_races import member_of
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import NOW, make_gateway

BASE, BONUS, FUNDED = 120, 200, 10_000
PURCHASE = Money(120_000, "UAH")


def setup(tmp_path: Path, max_uses: int = 1) -> tuple[Gateway, str]:
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "grocery", "c-1")
    enrol_customer(s.engine, s.clock, "grocery", "c-2")
    publish(gw, dataclasses.replace(bonus_campaign("grocery:spring", BONUS, budget_points=50_000),
                                    conditions=(CouponPresented(),)))
    with UnitOfWork(s.engine) as uow:
        funding.configure(uow.conn, "grocery", mode=FundingMode.PREPAID,
                          policy=FundingPolicy.REFUSE, limit_points=None, at=NOW, actor="fin")
        funding.top_up(uow.conn, "grocery", FUNDED, NOW, "fin")
        uow.commit()
    [code] = issue_coupons(s.engine, "grocery", CouponTerms("spring", max_uses=max_uses), 1,
                           customer_id=None, now=NOW, actor="test").codes
    return gw, code


def earn(gw: Gateway, code: str, customer: str = "c-1", n: int = 1) -> Earned:
    return earn_points(gw.services.ledger, EarnPoints(
        "grocery", customer, PURCHASE, "store", f"p-{customer}-{n}", f"e-{customer}-{n}",
        coupon_codes=(code,)))


def give_back(gw: Gateway, key: str, minor: int = PURCHASE.amount_minor,
              customer: str = "c-1", n: int = 1) -> Returned:
    return return_purchase(gw.services.ledger, ReturnPurchase(
        "grocery", f"p-{customer}-{n}", Money(minor, "UAH"), key))


def coupon_state(gw: Gateway) -> tuple[int, list[int]]:
    """The coupon's uses and its redemption rows' uses, in order."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        uses = int(uow.conn.execute(select(t.coupons.c.uses)).scalar_one())
        rows = [int(u) for u in uow.conn.execute(
            select(t.coupon_redemptions.c.uses).order_by(t.coupon_redemptions.c.id)).scalars()]
    return uses, rows


def funder_and_counter(gw: Gateway) -> tuple[int, int, int, int]:
    """grocery's issued and reversed points, and the campaign counter's points and rewards."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        found = funding.read(uow.conn, "grocery")
        counter = uow.conn.execute(select(t.campaign_counters.c.points,
                                          t.campaign_counters.c.rewards)).one()
    assert found is not None
    return found.issued_points, found.reversed_points, int(counter[0]), int(counter[1])


def test_an_earn_and_a_full_return_replayed_change_nothing(tmp_path: Path) -> None:
    gw, code = setup(tmp_path)
    first = earn(gw, code)
    assert (first.points, first.bonus_points) == (BASE + BONUS, BONUS)
    again = earn(gw, code)
    assert again == first
    assert coupon_state(gw) == (1, [1])
    assert funder_and_counter(gw) == (BONUS, 0, BONUS, 1)

    returned = give_back(gw, "r-1")
    assert returned.points_reversed == BASE + BONUS
    replayed = give_back(gw, "r-1")
    assert replayed == returned
    assert coupon_state(gw) == (0, [1, -1])
    assert funder_and_counter(gw) == (BONUS, BONUS, 0, 0)
    member = member_of(gw, "c-1")
    assert member_balance(gw.services.engine, gw.services.clock, member).available == 0
    assert verify_ledger(gw.services.engine).ok


def test_two_partial_returns_give_the_coupon_back_once_on_the_last(tmp_path: Path) -> None:
    gw, code = setup(tmp_path)
    earn(gw, code)
    part = give_back(gw, "r-1", 40_000)  # a third: ceil(120/3) = 40 base, ceil(200/3) = 67
    assert part.points_reversed == 40 + 67
    assert coupon_state(gw) == (1, [1])
    rest = give_back(gw, "r-2", 80_000)
    assert rest.points_reversed == 80 + 133
    assert coupon_state(gw) == (0, [1, -1])
    assert funder_and_counter(gw) == (BONUS, BONUS, 0, 0)
    # The coupon is usable again: the other member's earn gets the bonus.
    assert earn(gw, code, "c-2").bonus_points == BONUS
    assert coupon_state(gw) == (1, [1, -1, 1])
    assert verify_ledger(gw.services.engine).ok


def test_five_concurrent_full_returns_restore_and_release_once(tmp_path: Path) -> None:
    gw, code = setup(tmp_path)
    earn(gw, code)
    warm_pool(gw, 5)
    outcomes = race([lambda k=k: give_back(gw, f"r-{k}") for k in range(5)])
    done = [v for kind, v in outcomes if kind == "ok"]
    refused = [v for kind, v in outcomes if kind == "error"]
    assert len(done) == 1, outcomes
    assert all(isinstance(e, NothingToReturn) for e in refused), refused
    assert done[0].points_reversed == BASE + BONUS
    assert coupon_state(gw) == (0, [1, -1])
    assert funder_and_counter(gw) == (BONUS, BONUS, 0, 0)
    assert verify_ledger(gw.services.engine).ok


_WRITES = re.compile(r"^\s*(UPDATE|SELECT .* FOR UPDATE)", re.S | re.I)


def _table_of(statement: str) -> str | None:
    """The table a locking statement (an UPDATE, a SELECT ... FOR UPDATE) takes rows of."""
    text = " ".join(statement.split())
    if text.upper().startswith("UPDATE "):
        return text.split()[1].strip('"')
    found = re.search(r"\bFROM (\w+)", text)
    return found.group(1) if found and "FOR UPDATE" in text.upper() else None


def test_a_full_return_takes_the_coupon_before_counters_and_funders(tmp_path: Path) -> None:
    """Decision 025's lock order (purchase, member, coupons, counters, funders), followed by
    the earn, must be the return's too: a return that updated the funder's row first and the
    coupon's last would wait on an earn presenting that coupon (coupon locked, waiting on the
    funder) while holding the funder: a deadlock PostgreSQL breaks by aborting one of them."""
    gw, code = setup(tmp_path, max_uses=2)
    earn(gw, code)
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        table = _table_of(statement) if _WRITES.match(statement) else None
        if table in ("coupons", "campaign_counters", "funders"):
            seen.append(table)

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        give_back(gw, "r-1")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen, "the return touched no coupon, counter or funder"
    firsts = [seen.index(name) for name in ("coupons", "campaign_counters", "funders")]
    assert firsts == sorted(firsts), seen
    assert coupon_state(gw) == (0, [1, -1])


def test_a_return_releases_the_funder_only_for_the_bonus_it_took_back(tmp_path: Path) -> None:
    """Fuel lets no return leave debt. 1,200.00 UAH in the shop earns 60 base points and a
    200-point bonus fuel funds; the member redeems all 260 on another purchase, then returns
    the first whole: nothing is left to take back (260 unrecovered). The funder paid those
    200 points out for good (no points came back to its account), so its funding must not be
    released: issued 200, reversed 0, headroom 9,800. (It was released in full: reversed 200,
    headroom 10,000, past what the ledger holds.)"""
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "fuel", "f-1")
    publish(gw, bonus_campaign("fuel:spring", BONUS, partner="fuel"))
    with UnitOfWork(s.engine) as uow:
        funding.configure(uow.conn, "fuel", mode=FundingMode.PREPAID,
                          policy=FundingPolicy.REFUSE, limit_points=None, at=NOW, actor="fin")
        funding.top_up(uow.conn, "fuel", FUNDED, NOW, "fin")
        uow.commit()
    earned = earn_points(s.ledger, EarnPoints("fuel", "f-1", PURCHASE, "store", "fp-1", "fe-1"))
    assert (earned.points, earned.bonus_points) == (60 + BONUS, BONUS)
    redeem_points(s.ledger, RedeemPoints("fuel", "f-1", 60 + BONUS, Money(100_000, "UAH"),
                                         "fr-1", purchase_id="fp-2"))
    returned = return_purchase(s.ledger, ReturnPurchase("fuel", "fp-1", PURCHASE, "fret-1"))
    assert (returned.points_reversed, returned.points_unrecovered) == (0, 60 + BONUS)
    with UnitOfWork(s.engine, write=False) as uow:
        found = funding.read(uow.conn, "fuel")
    assert found is not None
    assert (found.issued_points, found.reversed_points, found.left_points) == (
        BONUS, 0, FUNDED - BONUS)
    assert verify_ledger(s.engine).ok


def test_a_partly_recovered_return_releases_what_came_back(tmp_path: Path) -> None:
    """As above, but the member keeps 100 points (redeems 160): the return takes those 100
    back, to the base first (60 to fuel's issued account), then 40 to the funder; 160 stay
    unrecovered. The funder gets 40 back: reversed 40, headroom 9,840."""
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "fuel", "f-1")
    publish(gw, bonus_campaign("fuel:spring", BONUS, partner="fuel"))
    with UnitOfWork(s.engine) as uow:
        funding.configure(uow.conn, "fuel", mode=FundingMode.PREPAID,
                          policy=FundingPolicy.REFUSE, limit_points=None, at=NOW, actor="fin")
        funding.top_up(uow.conn, "fuel", FUNDED, NOW, "fin")
        uow.commit()
    earn_points(s.ledger, EarnPoints("fuel", "f-1", PURCHASE, "store", "fp-1", "fe-1"))
    redeem_points(s.ledger, RedeemPoints("fuel", "f-1", 160, Money(100_000, "UAH"), "fr-1",
                                         purchase_id="fp-2"))
    returned = return_purchase(s.ledger, ReturnPurchase("fuel", "fp-1", PURCHASE, "fret-1"))
    assert (returned.points_reversed, returned.points_unrecovered) == (100, 160)
    with UnitOfWork(s.engine, write=False) as uow:
        found = funding.read(uow.conn, "fuel")
    assert found is not None
    assert (found.issued_points, found.reversed_points, found.left_points) == (
        BONUS, 40, FUNDED - BONUS + 40)
    assert verify_ledger(s.engine).ok


def test_a_referral_is_one_reward_of_its_campaign(tmp_path: Path) -> None:
    """A referral campaign with ``maxRewards`` 2 rewards two referrals: each is one reward (300
    to the referrer, 100 to the friend), not two. (The referrer's award counted a reward of its
    own, so the second friend's first purchase was skipped, "all 2 rewards given".)"""
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "grocery", "referrer")
    code = referrals.my_code(s.engine, member_of(gw, "referrer"), NOW)
    for friend in ("friend-1", "friend-2"):
        enrol_customer(s.engine, s.clock, "grocery", friend, referral_code=code)
    publish(gw, dataclasses.replace(bonus_campaign("grocery:refer", 0, max_rewards=2),
                                    conditions=(ReferralInEffect(),),
                                    effects=(ReferralReward(300, 100),)))
    first = earn_points(s.ledger, EarnPoints("grocery", "friend-1", PURCHASE, "store", "f1",
                                             "f1"))
    second = earn_points(s.ledger, EarnPoints("grocery", "friend-2", PURCHASE, "store", "f2",
                                              "f2"))
    assert (first.bonus_points, second.bonus_points) == (100, 100), second.explanation
    assert member_balance(s.engine, s.clock, member_of(gw, "referrer")).available == 600
    assert funder_counter(gw) == (800, 2)
    assert verify_ledger(s.engine).ok


def test_a_referral_that_rewards_only_the_referrer_is_one_reward(tmp_path: Path) -> None:
    """The same with nothing for the friend (ReferralReward(300, 0)): the referrer's award is
    the campaign's one reward for the referral."""
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "grocery", "referrer")
    code = referrals.my_code(s.engine, member_of(gw, "referrer"), NOW)
    enrol_customer(s.engine, s.clock, "grocery", "friend-1", referral_code=code)
    publish(gw, dataclasses.replace(bonus_campaign("grocery:refer", 0, max_rewards=2),
                                    conditions=(ReferralInEffect(),),
                                    effects=(ReferralReward(300, 0),)))
    earn_points(s.ledger, EarnPoints("grocery", "friend-1", PURCHASE, "store", "f1", "f1"))
    assert member_balance(s.engine, s.clock, member_of(gw, "referrer")).available == 300
    assert funder_counter(gw) == (300, 1)


def funder_counter(gw: Gateway) -> tuple[int, int]:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        row = uow.conn.execute(select(t.campaign_counters.c.points,
                                      t.campaign_counters.c.rewards)).one()
    return int(row[0]), int(row[1])


def test_a_coupons_per_member_limit_counts_the_uses_of_merged_accounts(tmp_path: Path) -> None:
    """A code usable 5 times, once per member. c-1 uses it; c-1's account is then merged into
    c-2's: one member, who has used the code once, so c-2's purchase presenting it gets only
    its base points ("this member's limit for it is reached"). (Only the survivor's own uses
    were counted: a merge gave the member a second use.)"""
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "grocery", "c-1")
    enrol_customer(s.engine, s.clock, "grocery", "c-2")
    publish(gw, dataclasses.replace(bonus_campaign("grocery:spring", BONUS),
                                    conditions=(CouponPresented(),)))
    [code] = issue_coupons(s.engine, "grocery", CouponTerms("spring", max_uses=5,
                                                            per_member_limit=1), 1,
                           customer_id=None, now=NOW, actor="test").codes
    assert earn(gw, code, "c-1").bonus_points == BONUS
    merge_members(s.engine, s.clock, member_of(gw, "c-2"), member_of(gw, "c-1"), "test")
    again = earn(gw, code, "c-2")
    assert again.bonus_points == 0
    assert f"coupon {normalise(code)} (grocery:spring): not used, this member's limit for " \
           "it is reached" in again.explanation
    assert coupon_state(gw) == (1, [1])
    assert verify_ledger(s.engine).ok
