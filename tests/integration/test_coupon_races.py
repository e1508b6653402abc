"""Coupons and referrals under races (issue 12, decision 025), on this run's real database with
real threads (``tests.integration.test_concurrency.race``).

20 members present one single-use coupon at once: exactly one earn gets the 200 bonus points,
the coupon's ``uses`` is 1 and one redemption row exists; the others earn their base points and
are told the code is used up. (The coupon rows are read ``FOR UPDATE`` after the member on
PostgreSQL, and the use is taken by a conditional UPDATE; SQLite's writer serialises.) A
referred member's 10 concurrent first purchases reward the referral once: 300 to the
referrer, 100 to the referred member, the referral row claimed by the one rewarded earn."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import func, select

from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import Earned, EarnPoints
from gateway.ledger.service import earn_points
from gateway.ledger.verify import verify_ledger
from gateway.promotions import referrals
from gateway.promotions.coupon_issue import CouponTerms, issue_coupons
from gateway.promotions.coupons import normalise
from gateway.promotions.model import CouponPresented, ReferralInEffect, ReferralReward
from tests.integration.test_concurrency import race, warm_pool
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import NOW, make_gateway

BASE = 120  # 1,200.00 UAH at the grocery


def earn_call(gw, customer: str, n: int, codes: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    command = EarnPoints("grocery", customer, Money(120_000, "UAH"), "store",
                         f"p-{customer}-{n}", f"k-{customer}-{n}", coupon_codes=codes)
    return lambda: earn_points(gw.services.ledger, command)


def member_of(gw, customer: str) -> str:  # type: ignore[no-untyped-def]
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.linked_accounts.c.member_id).where(
            t.linked_accounts.c.customer_id == customer)).scalar_one())


def test_twenty_members_race_for_one_single_use_coupon(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    s = gw.services
    for n in range(20):
        enrol_customer(s.engine, s.clock, "grocery", f"c-{n}")
    publish(gw, dataclasses.replace(bonus_campaign("grocery:spring", 200),
                                    conditions=(CouponPresented(),)))
    [code] = issue_coupons(s.engine, "grocery", CouponTerms("spring"), 1, customer_id=None,
                           now=NOW, actor="test").codes
    warm_pool(gw, 10)
    outcomes = race([earn_call(gw, f"c-{n}", 0, (code,)) for n in range(20)])
    assert [o for o in outcomes if o[0] == "error"] == []
    earned: list[Earned] = [result for _, result in outcomes]
    assert sorted(e.bonus_points for e in earned) == [0] * 19 + [200]
    assert sum(e.points for e in earned) == 20 * BASE + 200
    used_up = f"coupon {normalise(code)} (grocery:spring): not used, already used up"
    assert sorted(e.explanation[1] for e in earned) == sorted(
        [used_up] * 19 + [f"coupon {normalise(code)} (grocery:spring): redeemed"])
    with UnitOfWork(s.engine, write=False) as uow:
        uses = uow.conn.execute(select(t.coupons.c.uses)).scalar_one()
        rows = uow.conn.execute(select(t.coupon_redemptions.c.operation_id)).scalars().all()
    winner = next(e for e in earned if e.bonus_points)
    assert (uses, rows) == (1, [winner.operation_id])
    assert verify_ledger(s.engine).ok


def test_ten_first_purchases_race_and_the_referral_rewards_once(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "grocery", "referrer")
    referrer = member_of(gw, "referrer")
    code = referrals.my_code(s.engine, referrer, NOW)
    enrol_customer(s.engine, s.clock, "grocery", "friend", referral_code=code)
    friend = member_of(gw, "friend")
    publish(gw, dataclasses.replace(bonus_campaign("grocery:refer", 0),
                                    conditions=(ReferralInEffect(),),
                                    effects=(ReferralReward(300, 100),)))
    warm_pool(gw, 10)
    outcomes = race([earn_call(gw, "friend", n) for n in range(10)])
    assert [o for o in outcomes if o[0] == "error"] == []
    earned: list[Earned] = [result for _, result in outcomes]
    assert sorted(e.bonus_points for e in earned) == [0] * 9 + [100]
    assert member_balance(s.engine, s.clock, friend).available == 10 * BASE + 100
    assert member_balance(s.engine, s.clock, referrer).available == 300
    rewarded = next(e for e in earned if e.bonus_points)
    with UnitOfWork(s.engine, write=False) as uow:
        claimed = uow.conn.execute(select(t.referrals.c.rewarded_operation_id)).scalar_one()
        bonus_ops = uow.conn.execute(
            select(t.operations.c.parent_id, t.operations.c.points)
            .where(t.operations.c.member_id == referrer, t.operations.c.kind == "bonus")).all()
        awards = uow.conn.execute(select(func.count()).select_from(t.promotion_awards)
                                  ).scalar_one()
    assert claimed == rewarded.operation_id
    assert [tuple(r) for r in bonus_ops] == [(rewarded.operation_id, 300)]
    assert awards == 2  # the friend's 100 and the referrer's 300
    assert verify_ledger(s.engine).ok
