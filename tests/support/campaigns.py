"""Publish campaigns in tests: a BonusPoints campaign (the effect every engine evaluates the
same way) with the limits a test needs, then the app's campaign book reloaded."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.app import Gateway
from gateway.db.uow import UnitOfWork
from gateway.promotions.model import (
    COALITION,
    BonusPoints,
    Campaign,
    Condition,
    Limits,
    MemberLimit,
    MinSpend,
    Trigger,
    Window,
)
from gateway.promotions.repository import publish_version
from gateway.rules.campaigns import CampaignBook
from tests.support.harness import NOW


def bonus_campaign(campaign_id: str, points: int, *, partner: str | None = "grocery",
                   partners: frozenset[str] = frozenset({"grocery"}),
                   min_spend_minor: int | None = None, budget_points: int | None = None,
                   max_rewards: int | None = None, per_member: tuple[MemberLimit, ...] = (),
                   trigger: Trigger = Trigger.PURCHASE,
                   valid_from: datetime = NOW - timedelta(days=30)) -> Campaign:
    """A partner's campaign (``partner``), or a coalition-wide one (``partner=None``)."""
    owner = partner or COALITION
    conditions: tuple[Condition, ...] = (
        () if min_spend_minor is None else (MinSpend(min_spend_minor),))
    return Campaign(
        id=campaign_id, version=0, owner=owner, funder=owner, name=f"{campaign_id} bonus",
        trigger=trigger, valid_from=valid_from, valid_until=None,
        partners=frozenset({partner}) if partner else partners, conditions=conditions,
        effects=(BonusPoints(points),),
        limits=Limits(budget_points=budget_points, max_rewards=max_rewards,
                      per_member=per_member))


def per_member(window: Window, *, points: int | None = None,
               count: int | None = None) -> tuple[MemberLimit, ...]:
    return (MemberLimit(window, points=points, count=count),)


def publish(gateway: Gateway, *campaigns: Campaign) -> list[Campaign]:
    """Store each as its next version and reload the book (no wait for its refresh)."""
    services = gateway.services
    with UnitOfWork(services.engine) as uow:
        stored = [publish_version(uow.conn, c, actor="test", now=services.clock.now())
                  for c in campaigns]
        uow.commit()
    book = services.ledger.campaigns
    assert isinstance(book, CampaignBook)
    book.reload()
    return stored
