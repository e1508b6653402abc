"""A campaign version's semantic checks, before it is published: the first error found raises
:class:`~gateway.core.errors.InvalidInput` naming the field by its dotted GraphQL path
(``effects[1].factor``, ``limits.perMember[0].window``), so a partner's developer can fix the
input without reading our code. Shape and types are the parser's job (``manage``); this module
checks what a well-typed campaign may still get wrong. Pure, like the engine.

Field names are the API's camelCase; money and values drop ``_minor`` (``conditions[0].amount``,
``effects[0].value``, ``effects[0].pointValue``).
"""

from __future__ import annotations

import re
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.errors import InvalidInput
from gateway.promotions.model import (
    COALITION,
    MAX_HOLDOUT_PERCENT,
    BasketHas,
    BirthdayMonth,
    BonusPoints,
    Campaign,
    Cashback,
    ChannelIn,
    Condition,
    Effect,
    InSegment,
    MinSpend,
    Multiplier,
    NthPurchase,
    PointsDiscount,
    ReferralInEffect,
    ReferralReward,
    RewardKind,
    Schedule,
    TierIn,
    TillReward,
    Trigger,
)
from partners.config import Channel

MAX_POINTS = 10**9  # the most points one effect, budget or limit may name
MAX_FACTOR = Fraction(100)
MAX_PRIORITY = 10**6
MAX_NAME = 200
_CODE = re.compile(r"^[A-Z0-9-]{1,32}$")
_CHANNELS = frozenset(c.value for c in Channel)
# What an enrolment (no purchase) can be asked about: the member only.
_ENROLMENT_CONDITIONS = (TierIn, InSegment, BirthdayMonth, Schedule)


def _fail(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def _points(value: int, field: str, *, zero: bool = False) -> None:
    low = 0 if zero else 1
    if not low <= value <= MAX_POINTS:
        raise _fail(f"{field} must be between {low} and {MAX_POINTS} points, got {value}", field)


def _utc(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(f"{field} must carry a time zone (UTC), got {value.isoformat()}", field)


def validate(campaign: Campaign) -> None:
    """Raise ``InvalidInput`` (``field`` = the dotted path) for the first semantic error."""
    c = campaign
    if not c.id.strip():
        raise _fail("id must not be empty", "id")
    if c.version < 1:
        raise _fail(f"version must be >= 1, got {c.version}", "version")
    if not c.name.strip() or len(c.name) > MAX_NAME:
        raise _fail(f"name must be 1 to {MAX_NAME} characters, not blank", "name")
    _owner(c)
    _utc(c.valid_from, "validFrom")
    if c.valid_until is not None:
        _utc(c.valid_until, "validUntil")
        if c.valid_until <= c.valid_from:
            raise _fail(f"validUntil ({c.valid_until.isoformat()}) must be after validFrom "
                        f"({c.valid_from.isoformat()})", "validUntil")
    for channel in sorted(c.channels):
        if channel not in _CHANNELS:
            raise _fail(f"unknown channel {channel!r}; one of {sorted(_CHANNELS)}", "channels")
    for name, conditions in (("audience", c.audience), ("conditions", c.conditions)):
        for i, k in enumerate(conditions):
            _condition(k, f"{name}[{i}]", c.trigger)
    if not c.effects:
        raise _fail("a campaign needs at least one effect", "effects")
    for i, e in enumerate(c.effects):
        _effect(e, f"effects[{i}]", c)
    if sum(isinstance(e, PointsDiscount) for e in c.effects) > 1:
        raise _fail("at most one pointsDiscount per campaign", "effects")
    _limits(c)
    if abs(c.stacking.priority) > MAX_PRIORITY:
        raise _fail(f"priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}, "
                    f"got {c.stacking.priority}", "stacking.priority")
    if not 0 <= c.holdout_percent <= MAX_HOLDOUT_PERCENT:
        raise _fail(f"holdoutPercent must be between 0 and {MAX_HOLDOUT_PERCENT}, "
                    f"got {c.holdout_percent}", "holdoutPercent")


def _owner(c: Campaign) -> None:
    if not c.partners:
        raise _fail("a campaign applies at one partner at least", "partners")
    if c.owner == COALITION:
        if c.funder != COALITION:
            raise _fail(f"a coalition campaign is funded by {COALITION!r}, not {c.funder!r}",
                        "funder")
        if COALITION in c.partners:
            raise _fail(f"partners lists partner ids; {COALITION!r} is not one", "partners")
        return
    if not c.owner.strip():
        raise _fail("owner must be a partner id or 'coalition'", "owner")
    if c.funder != c.owner:
        raise _fail(f"a partner's campaign is funded by its owner {c.owner!r}, not "
                    f"{c.funder!r}", "funder")
    if c.partners != frozenset({c.owner}):
        raise _fail(f"a partner's campaign applies only at its owner {c.owner!r}; got "
                    f"{sorted(c.partners)}", "partners")


def _condition(k: Condition, at: str, trigger: Trigger) -> None:
    if trigger is Trigger.ENROLMENT and not isinstance(k, _ENROLMENT_CONDITIONS):
        raise _fail(f"an enrolment campaign has no purchase: {type(k).__name__} cannot hold "
                    "at enrolment", at)
    match k:
        case MinSpend(amount_minor=amount) if amount <= 0:
            raise _fail(f"minimum spend must be positive, got {amount} minor units",
                        f"{at}.amount")
        case BasketHas(categories=cats, skus=skus) if not cats and not skus:
            raise _fail("name at least one category or SKU", f"{at}.categories")
        case BasketHas(categories=cats, skus=skus) if any(not v.strip() for v in cats | skus):
            raise _fail("categories and SKUs must not be blank", f"{at}.categories")
        case Schedule():
            _schedule(k, at)
        case ChannelIn(channels=channels):
            if not channels:
                raise _fail("name at least one channel", f"{at}.channels")
            bad = sorted(channels - _CHANNELS)
            if bad:
                raise _fail(f"unknown channel {bad[0]!r}; one of {sorted(_CHANNELS)}",
                            f"{at}.channels")
        case NthPurchase(n=n) if n < 1:
            raise _fail(f"n counts purchases from 1 (the first), got {n}", f"{at}.n")
        case TierIn(tiers=tiers) if not tiers or any(not t.strip() for t in tiers):
            raise _fail("name at least one tier, none blank", f"{at}.tiers")
        case InSegment(segment=segment) if not segment.strip():
            raise _fail("segment must not be empty", f"{at}.segment")


def _schedule(k: Schedule, at: str) -> None:
    bad_days = sorted(d for d in k.days if not 0 <= d <= 6)
    if bad_days:
        raise _fail(f"days are 0 (Monday) to 6 (Sunday), got {bad_days[0]}", f"{at}.days")
    if (k.start is None) != (k.end is None):
        raise _fail("give both start and end of the time window, or neither",
                    f"{at}.{'end' if k.end is None else 'start'}")
    if k.start is not None and k.end is not None and not k.start < k.end:
        raise _fail(f"start ({k.start:%H:%M}) must be before end ({k.end:%H:%M})", f"{at}.start")
    try:
        ZoneInfo(k.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"unknown time zone {k.timezone!r} (an IANA name such as 'Europe/Kyiv')",
                    f"{at}.timezone") from None


def _percent(value: Fraction, field: str) -> None:
    if not 0 < value <= 100:
        raise _fail(f"percent must be in (0, 100], got {value}", field)


def _effect(e: Effect, at: str, c: Campaign) -> None:
    if c.trigger is Trigger.ENROLMENT and not isinstance(e, BonusPoints):
        raise _fail(f"an enrolment campaign gives bonus points only, not {type(e).__name__}", at)
    match e:
        case BonusPoints(points=points):
            _points(points, f"{at}.points")
        case Multiplier(factor=factor):
            if not 1 < factor <= MAX_FACTOR:
                raise _fail(f"factor must be above 1 and at most {MAX_FACTOR}, got {factor}",
                            f"{at}.factor")
        case Cashback(percent=percent):
            _percent(percent, f"{at}.percent")
        case TillReward():
            if not _CODE.match(e.code):
                raise _fail(f"code must be 1 to 32 of A-Z, 0-9 and '-', got {e.code!r}",
                            f"{at}.code")
            if not e.description.strip():
                raise _fail("description must not be empty", f"{at}.description")
            if e.value_minor is not None and e.value_minor <= 0:
                raise _fail(f"value must be positive, got {e.value_minor}", f"{at}.value")
            if e.percent is not None:
                _percent(e.percent, f"{at}.percent")
            if e.kind is RewardKind.DISCOUNT and e.value_minor is None and e.percent is None:
                raise _fail("a discount needs a value or a percent", f"{at}.value")
        case PointsDiscount(point_value_minor=value) if value <= 0:
            raise _fail(f"pointValue must be positive, got {value}", f"{at}.pointValue")
        case PointsDiscount() if c.owner == COALITION:
            # The partner where points are spent gives the better value and is settled per
            # point redeemed: only its own campaign may promise it (docs/decisions/027).
            raise _fail("a pointsDiscount is a partner's own campaign: the partner where the "
                        "points are spent bears the better value", at)
        case ReferralReward(referrer_points=referrer, referred_points=referred):
            _points(referrer, f"{at}.referrerPoints", zero=True)
            _points(referred, f"{at}.referredPoints", zero=True)
            if referrer + referred == 0:
                raise _fail("a referral reward gives points to someone", f"{at}.referrerPoints")
            if not any(isinstance(k, ReferralInEffect) for k in c.audience + c.conditions):
                raise _fail("a referral reward needs the referralInEffect condition", at)


def _limits(c: Campaign) -> None:
    lim = c.limits
    if lim.budget_points is not None:
        _points(lim.budget_points, "limits.budgetPoints")
    if lim.max_rewards is not None and lim.max_rewards < 1:
        raise _fail(f"maxRewards must be >= 1, got {lim.max_rewards}", "limits.maxRewards")
    seen = set()
    for i, m in enumerate(lim.per_member):
        at = f"limits.perMember[{i}]"
        if m.window in seen:
            raise _fail(f"one limit per window; {m.window.value} is given twice", f"{at}.window")
        seen.add(m.window)
        if m.points is None and m.count is None:
            raise _fail("a member limit names points, a count, or both", f"{at}.points")
        if m.points is not None:
            _points(m.points, f"{at}.points")
        if m.count is not None and m.count < 1:
            raise _fail(f"count must be >= 1, got {m.count}", f"{at}.count")
