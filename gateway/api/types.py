"""Shared GraphQL object and input types: money, balances, operations and their connection."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.api.bigint import MinorUnits
from gateway.core.errors import InvalidInput
from gateway.core.money import Money as DomainMoney
from gateway.ledger import model as m
from gateway.ledger.history import OperationView
from gateway.ledger.model import Balance as DomainBalance
from partners import config

# The rule engine's own channel (one definition: partners.config), exposed as the GraphQL enum.
strawberry.enum(config.Channel, description="Where the purchase happened.")
Channel = config.Channel


@strawberry.type(description="An amount in integer minor units (cents, kopiykas) of a currency.")
class Money:
    amount_minor: MinorUnits
    currency: str

    @staticmethod
    def of(money: DomainMoney) -> Money:
        return Money(amount_minor=money.amount_minor, currency=money.currency)


@strawberry.input(description="An amount in integer minor units and an ISO 4217 currency code.")
class MoneyInput:
    amount_minor: MinorUnits
    currency: str

    def to_domain(self, field: str) -> DomainMoney:
        try:
            return DomainMoney(self.amount_minor, self.currency)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=f"{field}.currency") from None


@strawberry.type(description="A member's points, as one number per state.")
class Balance:
    available: int = strawberry.field(description="Spendable now.")
    held: int = strawberry.field(description="Authorised for a redemption, not yet captured.")
    pending: int = strawberry.field(description="Earned, waiting out a return window.")
    debt: int = strawberry.field(description="Owed after a return; repaid from future earns.")
    expiring_soon: int = strawberry.field(description="Points that expire before expiringBefore.")
    expiring_before: datetime

    @staticmethod
    def of(balance: DomainBalance) -> Balance:
        return Balance(
            available=balance.available, held=balance.held, pending=balance.pending,
            debt=balance.debt, expiring_soon=balance.expiring_soon,
            expiring_before=balance.expiring_before,
        )


@strawberry.type(description="One business operation on a member's points at this partner.")
class Operation:
    id: strawberry.ID
    kind: str = strawberry.field(
        description="earn, redeem, authorise, capture, void, return, release (pending points "
        "became spendable), expire, hold_expired, donate (the member gave points to a charity), "
        "forfeit (left when the member erased their account)."
    )
    points: int = strawberry.field(description=(
        "The operation's own amount, signed: + for points the member gains (earn, release, "
        "refund), - for points taken or set aside (redeem, authorise, capture, return, expire). "
        "A capture shows the points captured, an earn the points earned, even when part of "
        "them only released a hold or repaid debt: availableChange is the effect on available "
        "points."))
    available_change: int = strawberry.field(description=(
        "Signed effect of this operation on the member's available points: a capture of 50 "
        "from an 80-point hold is +30 (the 30 not captured come back), an earn of 50 that "
        "repaid 16 of debt is +34. The availableChange of all the member's operations, at "
        "every partner, adds up "
        "to balance.available (points past their expiry count until the expiry sweep records "
        "them)."))
    channel: str | None
    purchase_id: str | None
    amount: Money | None
    rule_version: int | None
    occurred_at: datetime
    recorded_at: datetime

    @staticmethod
    def of(view: OperationView) -> Operation:
        amount = None
        if view.amount_minor is not None and view.currency is not None:
            amount = Money(amount_minor=view.amount_minor, currency=view.currency)
        return Operation(
            id=strawberry.ID(view.id), kind=view.kind, points=view.points,
            available_change=view.available_change, channel=view.channel,
            purchase_id=view.purchase_id, amount=amount, rule_version=view.rule_version,
            occurred_at=view.occurred_at, recorded_at=view.recorded_at,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class OperationEdge:
    cursor: str
    node: Operation


@strawberry.type(description="A page of operations, newest first (Relay connection).")
class OperationConnection:
    edges: list[OperationEdge]
    page_info: PageInfo


@strawberry.type(description="A campaign an earn applied: its bonus points and who funds them.")
class AppliedPromotion:
    campaign_id: strawberry.ID
    version: int
    funder: str = strawberry.field(description="A partner id, or coalition.")
    points: int
    explanation: str

    @staticmethod
    def of(p: m.AppliedPromotion) -> AppliedPromotion:
        return AppliedPromotion(campaign_id=strawberry.ID(p.campaign_id), version=p.version,
                                funder=p.funder, points=p.points, explanation=p.explanation)


@strawberry.type(description="A reward the till applies (a gift, free delivery, a discount).")
class TillReward:
    kind: str = strawberry.field(description="gift, free_delivery or discount.")
    code: str
    description: str
    value_minor: MinorUnits | None = strawberry.field(
        description="A discount's amount, or a gift's value, if known.")
    percent: str | None = strawberry.field(
        default=None, description="A percentage discount (the tier discount card), as an exact "
        "ratio string such as \"3\" or \"2.5\".")

    @staticmethod
    def of(r: m.TillRewardGiven) -> TillReward:
        return TillReward(kind=r.kind, code=r.code, description=r.description,
                          value_minor=r.value_minor, percent=r.percent)


@strawberry.type(description="A campaign that matched but was not applied, and why.")
class SkippedPromotion:
    campaign_id: strawberry.ID
    version: int
    reason: str = strawberry.field(description=(
        "budget_exhausted, rewards_exhausted, member_limit, not_stackable, funder_limit, "
        "no_point_value or holdout."))
    explanation: str

    @staticmethod
    def of(s: m.SkippedPromotion) -> SkippedPromotion:
        return SkippedPromotion(campaign_id=strawberry.ID(s.campaign_id), version=s.version,
                                reason=s.reason, explanation=s.explanation)
