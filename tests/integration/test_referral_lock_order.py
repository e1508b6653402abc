"""A return that takes back a referrer's reward, racing the first purchases of the referrer's
other referred members, on PostgreSQL (decisions 020 and 035): they must queue, never deadlock.

The referral campaign is budgeted and gives the referred member nothing (``ReferralReward(300,
0)``), so a partial return's own part moves no counter and the campaign's counter is first
touched by the referrer's share. A referred member's first earn locks member(friend), then the
counter, then member(referrer). The return used to lock member(purchaser), member(referrer),
then the counter: one return holding the referrer and one earn holding the counter waited on
each other, and PostgreSQL aborted one (SQLSTATE 40P01; ``gateway.db.retry`` ran it again).
The return now locks the counters and funders it may release before the referrer.

Deadlocks are counted where ``retrying`` asks whether a failure is retryable: nothing is
faked, the transactions run on the real server and only that answer is observed."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.core.money import Money
from gateway.db import retry
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints, ReturnPurchase
from gateway.ledger.service import earn_points, return_purchase
from gateway.ledger.verify import verify_ledger
from gateway.promotions import referrals
from gateway.promotions.model import ReferralInEffect, ReferralReward
from tests.integration.test_concurrency import race, warm_pool
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import BACKEND, make_gateway

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="PostgreSQL only: SQLite serialises writers whole, it cannot deadlock or abort one",
)

RETURNERS = 4  # referred members who return part of their first purchase each round
ROUNDS = 3
REWARD = 300  # to the referrer; 0 to the referred member
PURCHASE = Money(120_000, "UAH")
TENTH = Money(12_000, "UAH")  # each return: a tenth of the purchase, 30 of the reward back


def _member(gw, customer: str) -> str:  # type: ignore[no-untyped-def]
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.linked_accounts.c.member_id).where(
            t.linked_accounts.c.customer_id == customer)).scalar_one())


def _earn(gw, customer: str):  # type: ignore[no-untyped-def]
    command = EarnPoints("grocery", customer, PURCHASE, "store", f"p-{customer}",
                         f"k-{customer}")
    return lambda: earn_points(gw.services.ledger, command)


def _return(gw, customer: str, n: int):  # type: ignore[no-untyped-def]
    command = ReturnPurchase("grocery", f"p-{customer}", TENTH, f"r-{customer}-{n}")
    return lambda: return_purchase(gw.services.ledger, command)


def test_returns_and_first_purchases_under_one_referrer_never_deadlock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gw = make_gateway(tmp_path)
    s = gw.services
    enrol_customer(s.engine, s.clock, "grocery", "referrer")
    referrer = _member(gw, "referrer")
    code = referrals.my_code(s.engine, referrer, s.clock.now())
    friends = [f"friend-{n}" for n in range(RETURNERS * ROUNDS)]
    returners = [f"returner-{n}" for n in range(RETURNERS)]
    for customer in returners + friends:
        enrol_customer(s.engine, s.clock, "grocery", customer, referral_code=code)
    publish(gw, dataclasses.replace(bonus_campaign("grocery:refer", 0, budget_points=10**6),
                                    conditions=(ReferralInEffect(),),
                                    effects=(ReferralReward(REWARD, 0),)))
    for customer in returners:
        assert _earn(gw, customer)().bonus_points == 0  # the referrer got the reward
    assert member_balance(s.engine, s.clock, referrer).available == RETURNERS * REWARD

    deadlocks: list[str] = []
    seen = threading.Lock()
    retryable = retry.is_retryable

    def observed(exc: BaseException) -> bool:
        if retry.sqlstate(exc) == retry.DEADLOCK_DETECTED:
            with seen:
                deadlocks.append(str(exc).splitlines()[0])
        return retryable(exc)

    monkeypatch.setattr(retry, "is_retryable", observed)
    warm_pool(gw, 2 * RETURNERS)
    for n in range(ROUNDS):
        calls = [c for i, returner in enumerate(returners)
                 for c in (_return(gw, returner, n), _earn(gw, friends[n * RETURNERS + i]))]
        outcomes = race(calls)
        assert [o for o in outcomes if o[0] == "error"] == []

    assert deadlocks == []
    rewards = RETURNERS * REWARD + len(friends) * REWARD
    taken_back = RETURNERS * ROUNDS * REWARD // 10
    assert member_balance(s.engine, s.clock, referrer).available == rewards - taken_back
    with UnitOfWork(s.engine, write=False) as uow:
        consumed = uow.conn.execute(select(t.campaign_counters.c.points)).scalar_one()
    assert consumed == rewards - taken_back
    assert verify_ledger(s.engine).ok
