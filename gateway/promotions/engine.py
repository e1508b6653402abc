"""The campaign engine: compile once per version, evaluate a purchase with no I/O.

PLACEHOLDER from the contract commit: only validity, partner, channel, ``MinSpend`` and
``BonusPoints`` are evaluated here. The ``engine`` branch replaces this module with the whole
engine (every condition and effect, stacking, limits, explanations); keep these signatures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.promotions.model import (
    Award,
    BonusPoints,
    Campaign,
    Evaluation,
    MemberFacts,
    MinSpend,
    PurchaseContext,
    Trigger,
    Used,
)
from partners.config import RuleVersion


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    campaign: Campaign


@dataclass(frozen=True, slots=True)
class CampaignSet:
    """Every published campaign version in force, compiled, indexed by partner."""

    campaigns: tuple[CompiledCampaign, ...]

    def candidates(self, partner_id: str, channel: str, at: datetime,
                   trigger: Trigger = Trigger.PURCHASE) -> tuple[CompiledCampaign, ...]:
        """The campaigns that could apply here and now, in stacking order: no member needed."""
        return tuple(
            c for c in self.campaigns
            if c.campaign.trigger == trigger and partner_id in c.campaign.partners
            and (not c.campaign.channels or channel in c.campaign.channels)
            and c.campaign.valid_from <= at
            and (c.campaign.valid_until is None or at < c.campaign.valid_until)
        )


def compile_campaigns(campaigns: Iterable[Campaign]) -> CampaignSet:
    return CampaignSet(tuple(CompiledCampaign(c) for c in campaigns))


def evaluate(candidates: Iterable[CompiledCampaign], purchase: PurchaseContext,
             member: MemberFacts, used: Mapping[str, Used], rule: RuleVersion) -> Evaluation:
    awards = []
    for compiled in candidates:
        c = compiled.campaign
        if any(isinstance(k, MinSpend) and purchase.amount_minor < k.amount_minor
               for k in c.conditions):
            continue
        points = sum(e.points for e in c.effects if isinstance(e, BonusPoints))
        awards.append(Award(c.id, c.version, c.funder, member.member_id, points,
                            f"{c.name}: +{points} bonus"))
    return Evaluation(tuple(awards))
