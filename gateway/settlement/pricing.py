"""Settlement prices and the roundings, named once.

Money is rounded once per price bucket (one partner, one rule version, one closed period
adjusted) for the issue side, and once per origin → redeemer cell for the redemption side, so
the matrix's money adds up to the partners' redeemed amounts exactly. The rule: **a partner
pays CEIL, the coalition pays FLOOR** — rounding never makes the coalition pay out a fraction
it did not collect:

* issued points, payable by the issuer: CEIL;      returns of issued points, credited: FLOOR
* redeemed points, paid to the redeemer: FLOOR;     refunds of redeemed points, charged: CEIL
* fee (``fee_share`` × redemption price × net redeemed points), paid by the redeemer: CEIL
  (signed: a net refund gives back a fee, FLOOR of its magnitude)
* memo valuations on the coalition's line (breakage, liability change): FLOOR.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

from gateway.core.errors import DomainError
from gateway.core.money import Rounding, round_ratio
from gateway.ledger.context import RuleSource
from gateway.settlement.errors import SettlementUnbalanced
from partners.config import SettlementPrices


def pay(points: int, price: Fraction) -> int:
    """What a partner pays the coalition for ``points`` at ``price`` (CEIL)."""
    return round_ratio(points * price, Rounding.CEIL)


def paid(points: int, price: Fraction) -> int:
    """What the coalition pays a partner for ``points`` at ``price`` (FLOOR)."""
    return round_ratio(points * price, Rounding.FLOOR)


def prices(rules: RuleSource, partner_id: str, rule_partner_id: str | None,
           version: int | None, currency: str) -> SettlementPrices:
    """The prices of the rule version an operation was rated with (or its parent's)."""
    if version is None or rule_partner_id != partner_id:
        raise SettlementUnbalanced(
            f"an operation at {partner_id!r} carries no rule version of that partner "
            f"(got {rule_partner_id!r} v{version}); it cannot be priced")
    return _checked(rules.rule(partner_id, version).settlement, partner_id, currency)


def prices_at(rules: RuleSource, partner_id: str, end: datetime,
              currency: str) -> SettlementPrices:
    """Prices in force just before ``end`` (the first version if none was yet): memo items."""
    try:
        rule = rules.rule_at(partner_id, end - timedelta(microseconds=1))
    except DomainError:
        rule = rules.partner(partner_id).rules[0]
    return _checked(rule.settlement, partner_id, currency)


def _checked(found: SettlementPrices, partner_id: str, currency: str) -> SettlementPrices:
    if found.currency != currency:
        raise SettlementUnbalanced(
            f"{partner_id!r} settles in {found.currency}, the coalition in {currency}; "
            "there is no FX inside settlement")
    return found
