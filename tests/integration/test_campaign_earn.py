"""Campaigns in the earn's transaction (decision 020) on this run's real database: an earn
with a partner-funded and a coalition-funded bonus posts each from its funder's account, in
the earn's lot and operation, with its promotion_awards rows; a replay answers byte for byte;
partial and full returns reverse each award in proportion (CEIL, as the base) back to its
funder; an earn with no campaign in force writes no promotion row.

Every scenario uses BonusPoints and MinSpend only, which every engine evaluates the same way.
Grocery earns 1 point per 10.00 UAH (floor): 1,200.00 UAH earns 120 base points."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.chart import AccountKind, coalition_account, member_account, partner_account
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import Earned, EarnPoints, ReturnPurchase, to_json
from gateway.ledger.promotions import _PURCHASES_AT_PARTNER, largest_nth
from gateway.ledger.service import earn_points, return_purchase
from gateway.ledger.verify import verify_ledger
from gateway.promotions import engine
from gateway.promotions.model import Award, Evaluation, NthPurchase
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import make_gateway


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    gateway = make_gateway(tmp_path)
    enrol_customer(gateway.services.engine, gateway.services.clock, "grocery", "c-1")
    return gateway


def earn(gw: Gateway, minor: int, key: str, purchase: str | None = None) -> Earned:
    return earn_points(gw.services.ledger, EarnPoints(
        "grocery", "c-1", Money(minor, "UAH"), "store", purchase or key, key))


def give_back(gw: Gateway, minor: int, key: str, purchase: str) -> object:
    return return_purchase(gw.services.ledger,
                           ReturnPurchase("grocery", purchase, Money(minor, "UAH"), key))


def balances(gw: Gateway) -> dict[str, int]:
    """Every account's balance derived from its transfers (credits minus debits)."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        codes = dict(uow.conn.execute(select(t.accounts.c.id, t.accounts.c.code)).all())
        out: dict[str, int] = {}
        for debit, credit, amount in uow.conn.execute(select(
                t.transfers.c.debit_account_id, t.transfers.c.credit_account_id,
                t.transfers.c.amount)):
            out[codes[debit]] = out.get(codes[debit], 0) - amount
            out[codes[credit]] = out.get(codes[credit], 0) + amount
        return {code: value for code, value in out.items() if value}


def awards(gw: Gateway) -> list[tuple[str, str, int, int]]:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        return [tuple(r) for r in uow.conn.execute(  # type: ignore[misc]
            select(t.promotion_awards.c.campaign_id, t.promotion_awards.c.funder,
                   t.promotion_awards.c.points, t.promotion_awards.c.rewards)
            .order_by(t.promotion_awards.c.id)).all()]


def counters(gw: Gateway) -> dict[str, tuple[int, int]]:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        return {cid: (p, r) for cid, p, r in uow.conn.execute(select(
            t.campaign_counters.c.campaign_id, t.campaign_counters.c.points,
            t.campaign_counters.c.rewards)).all()}


def wallet_of(gw: Gateway) -> str:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        member = uow.conn.execute(select(t.linked_accounts.c.member_id).where(
            t.linked_accounts.c.customer_id == "c-1")).scalar_one()
    return member_account(member, AccountKind.WALLET)


def two_campaigns(gw: Gateway) -> None:
    publish(gw,
            bonus_campaign("gro-50", 50, min_spend_minor=100_000, budget_points=1_000),
            bonus_campaign("coal-30", 30, partner=None,
                           partners=frozenset({"grocery", "fuel"})))


def test_an_earn_with_two_campaigns_posts_each_bonus_from_its_funder(gw: Gateway) -> None:
    two_campaigns(gw)
    result = earn(gw, 120_000, "k-1")
    assert (result.points, result.bonus_points, result.base_points) == (200, 80, 120)
    assert result.available == 200
    assert [(p.campaign_id, p.version, p.funder, p.points) for p in result.promotions] == [
        ("coal-30", 1, "coalition", 30), ("gro-50", 1, "grocery", 50)]
    wallet = wallet_of(gw)
    assert balances(gw) == {
        wallet: 200, partner_account("grocery", AccountKind.ISSUED): -120,
        partner_account("grocery", AccountKind.PROMOTIONS): -50,
        coalition_account(AccountKind.BONUS): -30}
    assert awards(gw) == [("coal-30", "coalition", 30, 1), ("gro-50", "grocery", 50, 1)]
    # Only the budgeted campaign keeps its counter (an unbudgeted one adds no hot row).
    assert counters(gw) == {"gro-50": (50, 1), "coal-30": (0, 0)}
    with UnitOfWork(gw.services.engine, write=False) as uow:
        lot_points = uow.conn.execute(select(t.lots.c.points)).scalars().all()
        op_points = uow.conn.execute(select(t.operations.c.points).where(
            t.operations.c.kind == "earn")).scalars().all()
    assert (list(lot_points), list(op_points)) == ([200], [200])
    assert verify_ledger(gw.services.engine).ok


def test_a_replay_answers_the_promotions_byte_for_byte(gw: Gateway) -> None:
    two_campaigns(gw)
    first = earn(gw, 120_000, "k-1")
    again = earn(gw, 120_000, "k-1")
    assert to_json(again) == to_json(first)
    assert again.promotions == first.promotions and again.bonus_points == 80
    assert len(awards(gw)) == 2


def test_a_purchase_below_the_minimum_spend_gets_only_the_other_bonus(gw: Gateway) -> None:
    two_campaigns(gw)
    result = earn(gw, 99_900, "k-1")  # 999.00 UAH: 99 base points, gro-50 needs 1,000.00
    assert (result.points, result.bonus_points) == (129, 30)
    assert [p.campaign_id for p in result.promotions] == ["coal-30"]
    assert counters(gw)["gro-50"] == (0, 0)


def test_no_campaign_in_force_writes_no_promotion_row(gw: Gateway) -> None:
    publish(gw, bonus_campaign("fuel-only", 40, partner="fuel"))
    result = earn(gw, 120_000, "k-1")
    assert (result.points, result.bonus_points, result.promotions) == (120, 0, ())
    assert awards(gw) == []


def test_partial_then_full_return_reverses_each_award_in_proportion(gw: Gateway) -> None:
    two_campaigns(gw)
    earn(gw, 120_000, "k-1", "p-1")
    wallet = wallet_of(gw)
    issued = partner_account("grocery", AccountKind.ISSUED)
    promotions = partner_account("grocery", AccountKind.PROMOTIONS)
    bonus = coalition_account(AccountKind.BONUS)
    # A third back: base ceil(120/3) = 40, gro-50 ceil(50/3) = 17, coal-30 ceil(30/3) = 10.
    first = give_back(gw, 40_000, "r-1", "p-1")
    assert first.points_reversed == 67  # type: ignore[attr-defined]
    assert [(r.campaign_id, r.points) for r in first.promotions_reversed] == [  # type: ignore[attr-defined]
        ("coal-30", 10), ("gro-50", 17)]
    assert balances(gw) == {wallet: 133, issued: -80, promotions: -33, bonus: -20}
    assert counters(gw)["gro-50"] == (33, 1)
    # The rest: everything else, exactly (80 + 33 + 20 = 133).
    rest = give_back(gw, 80_000, "r-2", "p-1")
    assert rest.points_reversed == 133  # type: ignore[attr-defined]
    assert [(r.campaign_id, r.points) for r in rest.promotions_reversed] == [  # type: ignore[attr-defined]
        ("coal-30", 20), ("gro-50", 33)]
    assert balances(gw) == {}
    assert awards(gw) == [
        ("coal-30", "coalition", 30, 1), ("gro-50", "grocery", 50, 1),
        ("coal-30", "coalition", -10, 0), ("gro-50", "grocery", -17, 0),
        ("coal-30", "coalition", -20, -1), ("gro-50", "grocery", -33, -1)]
    assert counters(gw)["gro-50"] == (0, 0)
    replay = give_back(gw, 80_000, "r-2", "p-1")
    assert to_json(replay) == to_json(rest)
    assert verify_ledger(gw.services.engine).ok


def test_a_referrers_reward_is_its_own_bonus_operation_on_the_referrers_wallet(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine names the referrer in an award (``ReferralReward``); the placeholder engine
    has no referrals, so one award to the referrer is added to its evaluation here."""
    services = gw.services
    referrer = enrol_customer(services.engine, services.clock, "grocery", "c-2").member_id
    publish(gw, bonus_campaign("ref", 10))
    evaluate = engine.evaluate

    def with_referrer(*args: Any) -> Evaluation:
        found = evaluate(*args)
        return Evaluation((*found.awards, Award("ref", 1, "grocery", referrer, 25,
                                                "ref: +25 to the referrer")), found.skips)

    monkeypatch.setattr(engine, "evaluate", with_referrer)
    result = earn(gw, 120_000, "k-1")
    assert (result.points, result.bonus_points) == (130, 10)  # the referred: base + own bonus
    assert [p.points for p in result.promotions] == [10]
    again = earn(gw, 120_000, "k-1")
    assert to_json(again) == to_json(result)
    with UnitOfWork(services.engine, write=False) as uow:
        ops = uow.conn.execute(select(t.operations.c.kind, t.operations.c.member_id,
                                      t.operations.c.points, t.operations.c.parent_id)
                               .order_by(t.operations.c.id)).all()
        lots = uow.conn.execute(select(t.lots.c.member_id, t.lots.c.points)
                                .where(t.lots.c.member_id == referrer)).all()
    assert [(o.kind, o.points, o.parent_id) for o in ops] == [
        ("earn", 130, None), ("bonus", 25, result.operation_id)]
    assert ops[1].member_id == referrer and [tuple(lot) for lot in lots] == [(referrer, 25)]
    assert balances(gw)[member_account(referrer, AccountKind.WALLET)] == 25
    assert balances(gw)[partner_account("grocery", AccountKind.PROMOTIONS)] == -35
    assert verify_ledger(services.engine).ok


def test_the_partners_daily_cap_counts_its_own_points_not_bonuses(gw: Gateway) -> None:
    """Grocery caps a member at 20,000 of its points a day: a 19,990-point bonus today does not
    use it up (without the correction the second earn would be refused, CAP_EXCEEDED)."""
    publish(gw, bonus_campaign("big", 19_990, min_spend_minor=100_000))
    first = earn(gw, 120_000, "k-1")
    assert (first.points, first.bonus_points) == (20_110, 19_990)
    second = earn(gw, 99_900, "k-2")  # below the bonus's minimum spend: base points only
    assert (second.points, second.bonus_points) == (99, 0)


def test_a_bonus_from_a_campaign_since_ended_does_not_use_up_the_daily_cap(gw: Gateway) -> None:
    """The daily cap sums the transfers out of the partner's issued account, so a bonus counts
    for nothing whether or not a campaign is in force at the next earn."""
    [big] = publish(gw, bonus_campaign("big", 19_990, min_spend_minor=100_000))
    first = earn(gw, 120_000, "k-1")
    assert (first.points, first.bonus_points) == (20_110, 19_990)
    publish(gw, replace(big, valid_until=gw.services.clock.now()))  # ended: no candidate now
    second = earn(gw, 99_900, "k-2")  # 99 of the 20,000 a day; the 120 base points used 120
    assert (second.points, second.bonus_points) == (99, 0)


def test_the_purchases_count_stops_at_the_largest_nth_purchase(gw: Gateway) -> None:
    """NthPurchase(n) needs to know only whether n - 1 earns came before: the count reads at
    most n rows, however long the member's history at the partner."""
    for n in range(4):
        earn(gw, 10_000, f"h-{n}")
    with UnitOfWork(gw.services.engine, write=False) as uow:
        member = uow.conn.execute(select(t.linked_accounts.c.member_id)).scalar_one()
        counted = {n: int(uow.conn.execute(_PURCHASES_AT_PARTNER, {
            "member_id": member, "partner_id": "grocery", "n": n}).scalar_one())
            for n in (1, 2, 4, 9)}
    assert counted == {1: 1, 2: 2, 4: 4, 9: 4}
    compiled = engine.compile_campaigns([
        replace(bonus_campaign("third", 5), conditions=(NthPurchase(3),)),
        replace(bonus_campaign("first", 5), conditions=(NthPurchase(1),)),
        bonus_campaign("plain", 5)])
    assert largest_nth(compiled.candidates("grocery", "store", gw.services.clock.now())) == 3
