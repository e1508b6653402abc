"""Partner definitions as validated, immutable values (loaded from TOML by ``partners.loader``).

A partner has a fixed identity (id, kind, currency) and a list of rule versions, each in force
from ``effective_from`` until the next one starts. Ratios are exact ``Fraction``s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from gateway.core.money import Rounding


class PartnerKind(enum.StrEnum):
    MERCHANT = "merchant"
    CHARITY = "charity"  # only receives donated points; no earn rules


class Channel(enum.StrEnum):
    ONLINE = "online"
    APP = "app"
    STORE = "store"


@dataclass(frozen=True, slots=True)
class QuantityEarn:
    """Earn by quantity for one category (fuel: points per litre), instead of by amount."""

    category: str
    points: int
    per_quantity_milli: int  # 1000 = one litre / one unit


@dataclass(frozen=True, slots=True)
class EarnRule:
    points: int  # `points` for every `per_amount_minor` of spend
    per_amount_minor: int
    rounding: Rounding = Rounding.FLOOR
    min_spend_minor: int = 0
    cap_per_transaction: int | None = None
    cap_per_member_daily: int | None = None
    channel_multipliers: dict[str, Fraction] = field(default_factory=dict)
    category_multipliers: dict[str, Fraction] = field(default_factory=dict)
    quantity_earn: tuple[QuantityEarn, ...] = ()
    expiry_days: int = 365
    pending_days: int = 0  # earned points wait this long (return window) before they can be spent


@dataclass(frozen=True, slots=True)
class BurnRule:
    point_value_minor: Fraction  # what one point pays, in the partner's minor units
    max_basket_share: Fraction = Fraction(1)  # largest share of a basket payable with points
    min_points: int = 1


@dataclass(frozen=True, slots=True)
class SettlementPrices:
    """Prices in the coalition's settlement currency, in minor units per point (exact)."""

    currency: str
    price_per_point_issued_minor: Fraction  # the partner pays this per point it issues
    price_per_point_redeemed_minor: Fraction  # the partner is paid this per point redeemed there
    fee_share: Fraction = Fraction(0)  # the coalition's fee as a share of the redeemed amount


@dataclass(frozen=True, slots=True)
class RuleVersion:
    partner_id: str
    version: int
    effective_from: datetime  # UTC; in force until the next version's effective_from
    earn: EarnRule | None
    burn: BurnRule | None
    settlement: SettlementPrices


@dataclass(frozen=True, slots=True)
class PartnerPolicy:
    negative_balance_after_return: bool = False  # may a return leave the member owing points?
    hold_ttl_seconds: int = 900
    # How far back a sale's occurredAt may lie: older ones would pick an old rule version or
    # land in a closed settlement period (issue 9).
    max_backdate_days: int = 7
    # The plausible price of one unit (1,000 quantityMilli) of a line that names a quantity, in
    # minor units; outside it the line is refused (a 1.00 UAH sale of 1,000,000 litres once
    # earned the daily cap). None: no bound.
    unit_price_min_minor: int | None = None
    unit_price_max_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PartnerDefinition:
    id: str
    name: str
    kind: PartnerKind
    currency: str
    policy: PartnerPolicy
    rules: tuple[RuleVersion, ...]  # sorted by effective_from, versions strictly increasing

    def rule_at(self, at: datetime) -> RuleVersion | None:
        """The version in force at ``at`` (half-open: a version starts at its effective_from)."""
        current: RuleVersion | None = None
        for rule in self.rules:
            if rule.effective_from <= at:
                current = rule
            else:
                break
        return current
