"""A parsed campaign's rules across fields (``validate``), after ``parsing`` checked each field.

MINIMAL VERSION from the ``manage`` branch: the ``engine`` branch owns this module and its
version wins at merge (same signature: ``validate(campaign) -> None``, raising ``InvalidInput``
with ``field`` the dotted camelCase path)."""

from __future__ import annotations

from gateway.core.errors import InvalidInput
from gateway.promotions import model as m


def validate(campaign: m.Campaign) -> None:
    if campaign.valid_until is not None and campaign.valid_until <= campaign.valid_from:
        raise InvalidInput("validUntil must be after validFrom", field="validUntil")
    if not campaign.effects:
        raise InvalidInput("a campaign has at least one effect", field="effects")
    if campaign.owner != m.COALITION and campaign.partners != frozenset({campaign.owner}):
        raise InvalidInput("a partner's campaign applies only at that partner", field="partners")
    if campaign.funder not in (campaign.owner, m.COALITION):
        raise InvalidInput("the funder is the owner or the coalition", field="funder")
    for i, effect in enumerate(campaign.effects):
        if isinstance(effect, m.ReferralReward) and not any(
                isinstance(c, m.ReferralInEffect) for c in campaign.conditions):
            raise InvalidInput("a referral reward needs the referralInEffect condition",
                               field=f"effects[{i}].referralReward")
    if campaign.trigger == m.Trigger.ENROLMENT:
        for i, effect in enumerate(campaign.effects):
            if not isinstance(effect, m.BonusPoints):
                raise InvalidInput("an enrolment campaign gives bonus points only",
                                   field=f"effects[{i}]")
