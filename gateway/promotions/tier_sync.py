"""``gateway tiers sync``: the tier programme's benefits as coalition campaigns.

What a tier gives at a partner (an earn multiplier, the discount card) is one campaign per
(tier, partner) with audience ``TierIn(tier)``: ``tier-<tier>-<partner>``, owned and funded by
the coalition, or ``<partner>:tier-<tier>``, owned and funded by the partner, as the programme
says (``funder``). So tier benefits go through
the one engine (stacking, budgets, funders, explanations, returns in proportion) and every earn
records the campaign version it applied. The sync publishes a new version only for a campaign
whose definition changed, and ends the tier campaigns the programme no longer has; running it
twice writes nothing the second time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from gateway.db.uow import UnitOfWork
from gateway.promotions import repository, validation
from gateway.promotions.model import (
    COALITION,
    Campaign,
    Effect,
    Multiplier,
    RewardKind,
    TierIn,
    TillReward,
    Trigger,
)
from gateway.promotions.tiers import COALITION_FUNDED, Tier, TierProgramme
from partners.rules import _num

PREFIX = "tier-"


def campaign_id(tier: Tier, partner_id: str, *, partner_funded: bool = False) -> str:
    """``tier-gold-grocery`` (the coalition's), or ``fuel:tier-gold`` when the partner funds
    it: a partner-funded campaign is the partner's own (validation: a funder owns what it
    pays for), so it sits in the partner's namespace and shows in its ``campaigns``."""
    if partner_funded:
        return f"{partner_id}:{PREFIX}{tier.id}"
    return f"{PREFIX}{tier.id}-{partner_id}"


def is_tier_campaign(c: Campaign) -> bool:
    if c.owner == COALITION:
        return c.id.startswith(PREFIX)
    return c.id.startswith(f"{c.owner}:{PREFIX}")


def campaigns(programme: TierProgramme) -> list[Campaign]:
    """The campaigns the programme means (version 0: ``publish_version`` numbers them)."""
    found: list[Campaign] = []
    for partner_id, terms in sorted(programme.partners.items()):
        partner_funded = terms.funder != COALITION_FUNDED
        owner = partner_id if partner_funded else COALITION
        for tier in programme.tiers:
            effects: list[Effect] = []
            factor = terms.multipliers.get(tier.id)
            if factor is not None:
                effects.append(Multiplier(factor))
            percent = terms.discount_percent.get(tier.id)
            if percent is not None:
                effects.append(TillReward(
                    RewardKind.DISCOUNT, f"TIER-{tier.id.upper()}-{_num(percent)}",
                    f"{tier.name} discount card: {_num(percent)}% off", percent=percent))
            if not effects:
                continue
            found.append(Campaign(
                id=campaign_id(tier, partner_id, partner_funded=partner_funded), version=0,
                owner=owner, funder=owner,
                name=f"{tier.name} tier at {partner_id}", trigger=Trigger.PURCHASE,
                valid_from=programme.effective_from, valid_until=None,
                partners=frozenset({partner_id}), audience=(TierIn(frozenset({tier.id})),),
                effects=tuple(effects),
                description=f"tier programme v{programme.version}"))
    return found


@dataclass(frozen=True, slots=True)
class SyncLine:
    campaign_id: str
    version: int
    action: str  # published | unchanged | ended


def sync(engine: Engine, programme: TierProgramme, *, actor: str, now: datetime,
         progress: Callable[[SyncLine], None] | None = None) -> list[SyncLine]:
    """Publish what changed, end what is gone, in one write transaction."""
    lines: list[SyncLine] = []
    with UnitOfWork(engine) as uow:
        stored = {c.id: c for c in repository.load_published(uow.conn) if is_tier_campaign(c)}
        wanted = campaigns(programme)
        for draft in wanted:
            validation.validate(dataclasses.replace(draft, version=1))
            current = stored.get(draft.id)
            if current is not None:
                # A running campaign keeps its start: the change applies from this sync on.
                draft = dataclasses.replace(draft, valid_from=current.valid_from)
                if dataclasses.replace(draft, version=current.version) == current:
                    lines.append(SyncLine(draft.id, current.version, "unchanged"))
                    continue
            published = repository.publish_version(uow.conn, draft, actor=actor, now=now)
            lines.append(SyncLine(published.id, published.version, "published"))
        names = {c.id for c in wanted}
        for gone in sorted(set(stored) - names):
            current = stored[gone]
            if current.valid_until is not None and current.valid_until <= now:
                continue
            ended = dataclasses.replace(current, valid_until=max(now, current.valid_from))
            published = repository.publish_version(uow.conn, ended, actor=actor, now=now)
            lines.append(SyncLine(gone, published.version, "ended"))
        uow.commit()
    for line in lines:
        if progress is not None:
            progress(line)
    return lines
