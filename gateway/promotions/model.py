"""A campaign's definition and an evaluation's outcome, as frozen values (docs/decisions/020).

A campaign version never changes once published: an operation records the versions it applied
(``Award.campaign_id``/``version``), so a later version never changes a past operation. Points
are integers and ratios exact ``Fraction``s; the engine rounds once per effect, with the
partner's earn rounding (``partners.rules``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from fractions import Fraction
from typing import NamedTuple

from partners.rules import LineItem

COALITION = "coalition"  # the owner and funder of coalition-wide campaigns
MAX_HOLDOUT_PERCENT = 50  # a holdout past half the eligible members would be the treatment


class Trigger(enum.StrEnum):
    PURCHASE = "purchase"  # evaluated on every earnPoints
    ENROLMENT = "enrolment"  # evaluated once, when a member enrols (a welcome bonus)


# --- conditions: every one must hold -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MinSpend:
    amount_minor: int  # in the partner's currency


@dataclass(frozen=True, slots=True)
class BasketHas:
    """At least one line in one of ``categories`` or with one of ``skus``."""

    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Schedule:
    """Days of the week (0 Monday .. 6 Sunday; empty: every day) and a time window
    ``[start, end)`` (None: all day), in ``timezone``'s local time at ``occurred_at``."""

    days: frozenset[int] = frozenset()
    start: time | None = None
    end: time | None = None
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ChannelIn:
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class NthPurchase:
    """The member's ``n``-th purchase at this partner (1: the first)."""

    n: int


@dataclass(frozen=True, slots=True)
class TierIn:
    tiers: frozenset[str]


@dataclass(frozen=True, slots=True)
class InSegment:
    segment: str  # a segment id (personal offers; members who consented only)


@dataclass(frozen=True, slots=True)
class BirthdayMonth:
    """The purchase falls in the member's birth month (``members.birth_date``)."""


@dataclass(frozen=True, slots=True)
class CouponPresented:
    """A valid, unused coupon of this campaign was presented with the purchase."""


@dataclass(frozen=True, slots=True)
class ReferralInEffect:
    """The member was referred and this is their first qualifying purchase."""


Condition = (MinSpend | BasketHas | Schedule | ChannelIn | NthPurchase | TierIn | InSegment
             | BirthdayMonth | CouponPresented | ReferralInEffect)


# --- effects --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BonusPoints:
    points: int


@dataclass(frozen=True, slots=True)
class Multiplier:
    """The base points of the matching lines (every line when both sets are empty) times
    ``factor``: the bonus is the part above the base, ``factor - 1``."""

    factor: Fraction
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Cashback:
    """``percent`` of the spend on the matching lines, returned as points at the partner's
    point value (its burn rule's ``point_value_minor``)."""

    percent: Fraction
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()


class RewardKind(enum.StrEnum):
    GIFT = "gift"
    FREE_DELIVERY = "free_delivery"
    DISCOUNT = "discount"


@dataclass(frozen=True, slots=True)
class TillReward:
    """Something the till applies, returned as a structured effect with its code."""

    kind: RewardKind
    code: str
    description: str
    value_minor: int | None = None  # a discount's amount, or a gift's value, if known
    percent: Fraction | None = None  # a percentage discount


@dataclass(frozen=True, slots=True)
class PointsDiscount:
    """Points pay at a better rate at this partner: one point pays ``point_value_minor``."""

    point_value_minor: Fraction


@dataclass(frozen=True, slots=True)
class ReferralReward:
    """On the referred member's first qualifying purchase: points to each of them."""

    referrer_points: int
    referred_points: int


Effect = BonusPoints | Multiplier | Cashback | TillReward | PointsDiscount | ReferralReward


# --- limits and stacking --------------------------------------------------------------------------
class Window(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    LIFETIME = "lifetime"


@dataclass(frozen=True, slots=True)
class MemberLimit:
    window: Window
    points: int | None = None  # most bonus points one member gets in the window
    count: int | None = None  # most times one member gets it in the window


@dataclass(frozen=True, slots=True)
class Limits:
    budget_points: int | None = None  # total bonus points, over the campaign's life
    max_rewards: int | None = None  # total times it is applied
    per_member: tuple[MemberLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class Stacking:
    """Higher ``priority`` is applied first (ties: campaign id); an ``exclusive`` campaign
    applies alone: it is skipped when another was applied before it, and once it applies,
    every campaign after it is skipped ("not stackable")."""

    exclusive: bool = False
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    version: int
    owner: str  # a partner id, or COALITION
    funder: str  # who pays for its points: the owner's partner id, or COALITION
    name: str
    trigger: Trigger
    valid_from: datetime  # UTC, half-open [valid_from, valid_until)
    valid_until: datetime | None
    partners: frozenset[str]  # where it applies; a partner's campaign: only its own id
    channels: frozenset[str] = frozenset()  # empty: every channel
    audience: tuple[Condition, ...] = ()  # who: conditions about the member
    conditions: tuple[Condition, ...] = ()  # what: conditions about the purchase
    effects: tuple[Effect, ...] = ()
    limits: Limits = field(default_factory=Limits)
    stacking: Stacking = field(default_factory=Stacking)
    description: str = ""
    # A randomised holdout (docs/decisions/034): this percentage (0 to 50) of the eligible
    # members, chosen per campaign by ``holdout.held_out``, never gets it, so its effect on
    # spend can be measured against them (``gateway.reports``).
    holdout_percent: int = 0


# --- what the engine is given ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the load step read about the member, only what some candidate campaign needs."""

    member_id: str
    tier: str | None = None
    segments: frozenset[str] = frozenset()
    birth_month: int | None = None
    purchases_at_partner: int = 0  # earns at this partner before this one
    referred_by: str | None = None  # the referrer, while the referral awaits its purchase
    coupons: frozenset[str] = frozenset()  # campaign ids with a valid coupon presented


@dataclass(frozen=True, slots=True)
class PurchaseContext:
    partner_id: str
    channel: str
    occurred_at: datetime  # UTC
    amount_minor: int
    currency: str
    lines: tuple[LineItem, ...]  # never empty: the whole amount is one line when none given
    base_points: int  # what the conversion rule gave, after its caps


@dataclass(frozen=True, slots=True)
class Used:
    """A campaign's consumption so far, read in the command's transaction (budget rows
    locked): totals, and the member's own in each window its limits name."""

    points: int = 0
    rewards: int = 0
    member: Mapping[Window, tuple[int, int]] = field(default_factory=dict)  # (points, count)


# --- what the engine returns ----------------------------------------------------------------------
class SkipReason(enum.StrEnum):
    BUDGET_EXHAUSTED = "budget_exhausted"
    REWARDS_EXHAUSTED = "rewards_exhausted"
    MEMBER_LIMIT = "member_limit"
    NOT_STACKABLE = "not_stackable"
    FUNDER_LIMIT = "funder_limit"
    NO_POINT_VALUE = "no_point_value"  # cashback at a partner that accepts no points
    HOLDOUT = "holdout"  # the member is in the campaign's holdout group (decision 034)


class Award(NamedTuple):
    """One campaign applied: its bonus points (to ``member_id``: the purchaser, or the
    referrer for a referral's reward) charged to ``funder``, and any till reward. A named
    tuple, immutable like the frozen values here, and made three times faster: the engine
    makes one per campaign applied, dozens per earn (benchmarks/campaigns.py)."""

    campaign_id: str
    version: int
    funder: str
    member_id: str
    points: int
    explanation: str
    till_reward: TillReward | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    campaign_id: str
    version: int
    reason: SkipReason
    explanation: str
    funder: str = ""  # set for a holdout skip: its promotion_awards marker row names it


@dataclass(frozen=True, slots=True)
class Evaluation:
    awards: tuple[Award, ...] = ()
    skips: tuple[Skip, ...] = ()

    @property
    def bonus_points(self) -> int:
        return sum(a.points for a in self.awards)

    @property
    def explanation(self) -> tuple[str, ...]:
        """Every award, then every skip, one line each, in stacking order."""
        return tuple(a.explanation for a in self.awards) + tuple(s.explanation for s in self.skips)
