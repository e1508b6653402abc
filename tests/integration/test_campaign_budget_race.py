"""Budgets and per-member limits under races (issue 12, decision 020), on this run's real
database with real threads (``tests.integration.test_concurrency.race``): 50 concurrent
qualifying earns against a budget that covers exactly 10 bonuses give exactly 10 awards, and
the campaign's counter equals the sum of its promotion_awards rows; a per-member limit of one
award holds against 20 concurrent earns of one member.

The counters are locked after the member, in campaign id order (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's writer serialises), and the engine refuses what the locked counter no
longer covers. The counter == sum(awards) check is the write path's own; the "exactly 10" is
the engine's limit arithmetic on the locked values, so with the contract's placeholder engine
(which does not evaluate limits) that part is reported as an expected failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.ledger.verify import verify_ledger
from gateway.promotions import engine
from gateway.promotions.model import Evaluation, MemberFacts, PurchaseContext, Used, Window
from partners.rules import LineItem
from tests.integration.test_concurrency import race, warm_pool
from tests.support.campaigns import bonus_campaign, per_member, publish
from tests.support.harness import NOW, make_gateway

# Races of 40-50 threads against pools of 30: under the side-by-side passes' load the queued
# ones can wait out the pool's 30 s timeout. dev.py test runs these alone, afterwards.
pytestmark = pytest.mark.serial

BONUS = 5


def limits_only_evaluate(candidates, purchase, member, used, rule):  # type: ignore[no-untyped-def]
    """The tree's engine, then its awards cut to what the locked counters and the member's
    usage still allow (budget points, rewards, a lifetime count): the limit arithmetic the
    full engine owns, reduced to the cases here, so the write path's locking is tested on its
    own whichever engine is in the tree."""
    evaluation = _evaluate(candidates, purchase, member, used, rule)
    limits = {c.campaign.id: c.campaign.limits for c in candidates}
    kept = []
    for award in evaluation.awards:
        limit, seen = limits[award.campaign_id], used.get(award.campaign_id, Used())
        if limit.budget_points is not None and seen.points + award.points > limit.budget_points:
            continue
        if limit.max_rewards is not None and seen.rewards + 1 > limit.max_rewards:
            continue
        if any(m.count is not None and seen.member.get(m.window, (0, 0))[1] + 1 > m.count
               for m in limit.per_member):
            continue
        kept.append(award)
    return Evaluation(tuple(kept), evaluation.skips)


_evaluate = engine.evaluate


@pytest.fixture(params=["tree-engine", "limits-stub"])
def gw(request: pytest.FixtureRequest, tmp_path: Path,
       monkeypatch: pytest.MonkeyPatch) -> Gateway:
    gateway = make_gateway(tmp_path)
    gateway.stubbed = request.param == "limits-stub"  # type: ignore[attr-defined]
    if gateway.stubbed:  # type: ignore[attr-defined]
        monkeypatch.setattr(engine, "evaluate", limits_only_evaluate)
    return gateway


def engine_enforces_limits(gw: Gateway) -> bool:
    """Whether the engine in this tree refuses a campaign whose budget is used up."""
    if gw.stubbed:  # type: ignore[attr-defined]
        return True
    probe = bonus_campaign("probe", BONUS, budget_points=BONUS)
    compiled = engine.compile_campaigns([probe])
    purchase = PurchaseContext("grocery", "store", NOW, 10_000, "UAH", (LineItem(10_000),), 10)
    evaluation = engine.evaluate(
        compiled.candidates("grocery", "store", NOW), purchase, MemberFacts("m"),
        {"probe": Used(points=BONUS, rewards=1)}, gw.services.rules.rule_at("grocery", NOW))
    return not evaluation.awards


def earn_call(gw: Gateway, customer: str, n: int):  # type: ignore[no-untyped-def]
    command = EarnPoints("grocery", customer, Money(10_000, "UAH"), "store", f"p-{customer}-{n}",
                         f"k-{customer}-{n}")
    return lambda: earn_points(gw.services.ledger, command)


def awarded(gw: Gateway, campaign_id: str) -> tuple[int, int, int, int]:
    """(award rows, their points, the counter's points, the counter's rewards)."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        rows, points = uow.conn.execute(
            select(func.count(), func.coalesce(func.sum(t.promotion_awards.c.points), 0))
            .where(t.promotion_awards.c.campaign_id == campaign_id)).one()
        counter = uow.conn.execute(
            select(t.campaign_counters.c.points, t.campaign_counters.c.rewards)
            .where(t.campaign_counters.c.campaign_id == campaign_id)).one()
    return int(rows), int(points), int(counter[0]), int(counter[1])


def check_budget_race(gw: Gateway, calls: list) -> None:  # type: ignore[type-arg]
    warm_pool(gw, 10)  # the pools hold 15 (SQLite) or 30: the rest queue for one, racing still
    outcomes = race(calls)
    assert [o for o in outcomes if o[0] == "error"] == []
    bonuses = sum(result.bonus_points for _, result in outcomes)
    rows, points, counter_points, counter_rewards = awarded(gw, "budget-10")
    # The write path's own invariant: the counter is exactly what the awards consumed.
    assert (counter_points, counter_rewards) == (points, rows)
    assert bonuses == points
    assert verify_ledger(gw.services.engine).ok
    if not engine_enforces_limits(gw):
        pytest.xfail("the placeholder engine evaluates no budget (the engine branch does)")
    assert (rows, points) == (10, 10 * BONUS)


def test_fifty_members_race_for_a_budget_of_ten_bonuses(gw: Gateway) -> None:
    services = gw.services
    for n in range(50):
        enrol_customer(services.engine, services.clock, "grocery", f"c-{n}")
    publish(gw, bonus_campaign("budget-10", BONUS, budget_points=10 * BONUS))
    check_budget_race(gw, [earn_call(gw, f"c-{n}", 0) for n in range(50)])


def test_one_member_races_fifty_earns_for_a_budget_of_ten_bonuses(gw: Gateway) -> None:
    services = gw.services
    enrol_customer(services.engine, services.clock, "grocery", "c-0")
    publish(gw, bonus_campaign("budget-10", BONUS, max_rewards=10))
    check_budget_race(gw, [earn_call(gw, "c-0", n) for n in range(50)])


def test_a_per_member_limit_of_one_holds_under_a_race(gw: Gateway) -> None:
    services = gw.services
    for customer in ("c-0", "c-1"):
        enrol_customer(services.engine, services.clock, "grocery", customer)
    publish(gw, bonus_campaign("once-each", BONUS, per_member=per_member(Window.LIFETIME,
                                                                         count=1)))
    calls = [earn_call(gw, "c-0", n) for n in range(20)] + [earn_call(gw, "c-1", n)
                                                            for n in range(20)]
    warm_pool(gw, 10)  # the pools hold 15 (SQLite) or 30: the rest queue for one, racing still
    outcomes = race(calls)
    assert [o for o in outcomes if o[0] == "error"] == []
    with UnitOfWork(services.engine, write=False) as uow:
        per_member_rows = dict(uow.conn.execute(
            select(t.promotion_awards.c.member_id, func.count())
            .group_by(t.promotion_awards.c.member_id)).all())
    assert sum(result.bonus_points for _, result in outcomes) == BONUS * sum(
        per_member_rows.values())
    if not engine_enforces_limits(gw):
        pytest.xfail("the placeholder engine evaluates no member limit (the engine branch does)")
    assert sorted(per_member_rows.values()) == [1, 1]
