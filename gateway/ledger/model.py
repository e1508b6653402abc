"""Commands the ledger accepts and the results it returns.

Results are plain frozen dataclasses that serialise to canonical JSON: the JSON is stored with
the operation, and a replay under the same idempotency key returns it again, byte for byte."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from gateway.core.money import Money
from partners.config import RuleVersion
from partners.rules import LineItem as PurchaseLine  # one purchase-line type: API, ledger, rules

T = TypeVar("T")


# --- commands -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EarnPoints:
    """Who earns is exactly one of: ``customer_id`` (linked at this partner), ``card_number``
    (a bare coalition card earns anywhere, no link needed) or ``store_code`` (shown by the
    member's app at the till)."""

    partner_id: str
    customer_id: str | None
    amount: Money
    channel: str
    purchase_id: str
    idempotency_key: str
    lines: tuple[PurchaseLine, ...] = ()
    occurred_at: datetime | None = None
    card_number: str | None = None
    store_code: str | None = None
    # Coupon codes presented at the till (issue 12): carried to the coupon check, which turns
    # them into ``MemberFacts.coupons`` (``gateway.ledger.promotions``).
    coupon_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpendFields:
    """What a spend request says, the same for a redeem and an authorisation. Who spends is a
    linked ``customer_id`` or a ``store_code`` the member showed (their consent for this one
    spend); a ``card_number`` alone never spends (``ConsentRequired``)."""

    partner_id: str
    customer_id: str | None
    points: int
    basket: Money
    idempotency_key: str
    purchase_id: str | None = None
    channel: str | None = None
    card_number: str | None = None
    store_code: str | None = None
    # Coupons presented with a redemption (decision 025): one whose campaign gives a
    # PointsDiscount is used when that discount pays; an authorisation ignores them.
    coupon_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RedeemPoints(SpendFields):
    """Spend points now (:class:`SpendFields`)."""


@dataclass(frozen=True, slots=True)
class AuthoriseRedemption(SpendFields):
    """Hold points for a redemption, to capture or void later: the same request as
    :class:`RedeemPoints`, its own command (its key is not a redeem's key)."""

    @classmethod
    def of(cls, request: RedeemPoints) -> AuthoriseRedemption:
        """The same request, sent to authorise instead of redeem."""
        return cls(*(getattr(request, f.name) for f in dataclasses.fields(SpendFields)))


SpendCommand = RedeemPoints | AuthoriseRedemption


@dataclass(frozen=True, slots=True)
class CaptureRedemption:
    partner_id: str
    hold_id: str
    idempotency_key: str
    points: int | None = None  # None: capture everything held


@dataclass(frozen=True, slots=True)
class VoidRedemption:
    partner_id: str
    hold_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class ReturnPurchase:
    partner_id: str
    purchase_id: str
    amount: Money  # the part of the purchase returned
    idempotency_key: str


# --- results --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TillRewardGiven:
    """A reward the till applies (a gift, free delivery, a discount), as the earn answers it."""

    kind: str
    code: str
    description: str
    value_minor: int | None = None
    percent: str | None = None  # a percentage discount, an exact ratio ("3", "2.5")


@dataclass(frozen=True, slots=True)
class AppliedPromotion:
    """A campaign version an earn applied: its bonus points, charged to ``funder``."""

    campaign_id: str
    version: int
    funder: str
    points: int
    explanation: str
    till_reward: TillRewardGiven | None = None

    def __post_init__(self) -> None:
        if isinstance(self.till_reward, dict):  # decoded from a stored answer
            object.__setattr__(self, "till_reward", TillRewardGiven(**self.till_reward))


@dataclass(frozen=True, slots=True)
class SkippedPromotion:
    """A campaign that matched but was not applied, and why (``SkipReason``)."""

    campaign_id: str
    version: int
    reason: str
    explanation: str


@dataclass(frozen=True, slots=True)
class ReversedPromotion:
    """What a return took back of one applied campaign's points."""

    campaign_id: str
    version: int
    funder: str
    points: int


def _values(kind: type[T], items: Any) -> tuple[T, ...]:
    """A tuple of ``kind`` from itself or from the dicts a stored answer decodes to."""
    if type(items) is tuple and dict not in map(type, items):  # made, not decoded: as it is
        return items
    return tuple(kind(**item) if isinstance(item, dict) else item for item in items)


@dataclass(frozen=True, slots=True)
class BonusPosted:
    """A ``bonus`` operation's answer: a welcome bonus at enrolment, or a referrer's reward
    posted with the referred member's earn (stored with the operation)."""

    operation_id: str
    points: int
    promotions: tuple[AppliedPromotion, ...]
    recorded_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "promotions", _values(AppliedPromotion, self.promotions))


@dataclass(frozen=True, slots=True)
class ReferralReversed:
    """A referrer's reward taken back (decision 035): the answer of the ``return`` operation
    that a return of the referred member's purchase posts on the referrer's accounts, child of
    the reward's ``bonus`` operation. Each campaign's share is its points in proportion to the
    amount returned so far (CEIL, as the purchaser's own bonus), less earlier returns' shares;
    the referrer's wallet gives back what it holds, the rest is unrecovered (never debt)."""

    operation_id: str
    bonus_operation_id: str
    points_reversed: int
    points_unrecovered: int
    recorded_at: datetime
    promotions_reversed: tuple[ReversedPromotion, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "promotions_reversed",
                           _values(ReversedPromotion, self.promotions_reversed))


@dataclass(frozen=True, slots=True)
class Earned:
    operation_id: str
    points: int
    rule_version: int
    explanation: tuple[str, ...]
    debt_repaid: int
    # None when the member was named by a bare card number: whoever typed it learns no balance.
    available: int | None
    recorded_at: datetime
    pending: int = 0  # of `points`, how many wait out the partner's return window
    # Campaigns (issue 12): `points` includes `bonus_points`, the sum of `promotions`' points.
    # Answers stored before campaigns existed load with the defaults.
    bonus_points: int = 0
    promotions: tuple[AppliedPromotion, ...] = ()
    skipped: tuple[SkippedPromotion, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "promotions", _values(AppliedPromotion, self.promotions))
        object.__setattr__(self, "skipped", _values(SkippedPromotion, self.skipped))

    @property
    def base_points(self) -> int:
        """What the partner's conversion rule gave, without campaigns."""
        return self.points - self.bonus_points


@dataclass(frozen=True, slots=True)
class Redeemed:
    operation_id: str
    points: int
    value: Money
    rule_version: int
    available: int
    recorded_at: datetime
    # A partner's PointsDiscount campaign that set a better point value (0 points; its
    # explanation names the campaign and the value): issue 12, docs/decisions/027.
    promotions: tuple[AppliedPromotion, ...] = ()
    # One line per coupon presented (used, or why not): empty when none was.
    explanation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "promotions", _values(AppliedPromotion, self.promotions))


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    operation_id: str
    hold_id: str
    points: int
    value: Money
    rule_version: int
    expires_at: datetime
    available: int
    # As a redemption's (issue 12): the PointsDiscount campaign whose better point value the
    # hold was priced at, and one line per coupon presented. ``point_value_minor`` is that
    # value as an exact ratio ("3/2"): the capture pays it, whatever the campaign does after.
    # Answers stored before holds took discounts load with the defaults.
    promotions: tuple[AppliedPromotion, ...] = ()
    explanation: tuple[str, ...] = ()
    point_value_minor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "promotions", _values(AppliedPromotion, self.promotions))


@dataclass(frozen=True, slots=True)
class HoldCaptured:
    operation_id: str
    hold_id: str
    points: int
    released: int
    value: Money
    available: int


@dataclass(frozen=True, slots=True)
class HoldVoided:
    operation_id: str
    hold_id: str
    released: int
    available: int


@dataclass(frozen=True, slots=True)
class Returned:
    operation_id: str
    purchase_id: str
    points_reversed: int  # earned points taken back from the wallet
    points_owed: int  # taken back beyond the wallet, as debt to repay from future earns
    points_unrecovered: int  # could not be taken back (partner policy forbids debt)
    points_refunded: int  # points the member had spent on this purchase, given back
    amount_returned_total: Money
    available: int
    debt: int
    recorded_at: datetime | None = None  # None only in answers stored before it was recorded
    # Of the reversed points (all three kinds), what went back to campaigns' funders, per
    # applied campaign (issue 12); the rest went back to the partner's issued account.
    promotions_reversed: tuple[ReversedPromotion, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "promotions_reversed",
                           _values(ReversedPromotion, self.promotions_reversed))

    @property
    def bonus_reversed(self) -> int:
        return sum(p.points for p in self.promotions_reversed)

    @property
    def points_reversed_total(self) -> int:
        """Every earned point the return reverses: from the wallet, as debt, or unrecovered."""
        return self.points_reversed + self.points_owed + self.points_unrecovered


@dataclass(frozen=True, slots=True)
class PreviewedEarn:
    points: int
    uncapped_points: int
    capped_by: str | None
    rule_version: int
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    held: int
    pending: int
    debt: int
    expiring_soon: int
    expiring_before: datetime


# --- codec ----------------------------------------------------------------------------------------
_PLAIN = frozenset({int, str, bool, float, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, looked up once


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # the common case first: an earn's answer with campaigns has hundreds
        return value
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, Money):
        return {"$money": [value.amount_minor, value.currency]}
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    # Plain values are tested inline, not by a call each: an earn's answer with 35 campaigns
    # holds ~300 of them (benchmarks/campaigns.py).
    if names is not None:
        out = {}
        for name in names:
            v = getattr(value, name)
            out[name] = v if type(v) in _PLAIN else _encode(v)
        return out
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else _encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        if "$money" in value:
            return Money(*value["$money"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


# json.dumps(..., sort_keys=True, separators=(",", ":")) without an encoder made per call.
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
# The JSON of each applied or skipped campaign seen lately: an earn's answer lists one per
# campaign, and most are the same item from earn to earn (``ledger.promotions.applied`` reuses
# an item for a fixed bonus: same campaign, points and line), so its text is made once, not a
# dict and its encoding per campaign per earn (35 campaigns: about 60 µs of an earn's CPU).
# Keyed by the item's id, with the item kept in the entry (so no other object can have that id
# while the entry lives); cleared when full, so one-off items (a cashback's line names the
# spend) keep it bounded.
_MEMOISED = frozenset({AppliedPromotion, SkippedPromotion})
_ITEM_JSON: dict[int, tuple[Any, str]] = {}
_ITEM_JSON_MAX = 2048
_KEY_JSON: dict[str, str] = {}  # '"promotions":'


def _item_json(item: Any) -> str:
    """One memoisable item's JSON, from the memo or made (and memoised)."""
    found = _ITEM_JSON.get(id(item))
    if found is not None and found[0] is item:
        return found[1]
    if len(_ITEM_JSON) >= _ITEM_JSON_MAX:
        _ITEM_JSON.clear()
    text = _dumps(_encode(item))
    _ITEM_JSON[id(item)] = (item, text)
    return text


def _spliced(v: Any) -> bool:
    """Whether a field is a list of memoisable items long enough to splice in."""
    return type(v) is tuple and len(v) > 1 and set(map(type, v)) <= _MEMOISED


# The results with lists of campaigns, and those lists' fields.
_LISTS: dict[type, tuple[str, ...]] = {Earned: ("promotions", "skipped"),
                                       BonusPosted: ("promotions",), Redeemed: ("promotions",)}


def to_json(value: Any) -> str:
    """Canonical JSON: keys sorted, no spaces, ASCII (a stored answer's exact bytes). A
    result whose lists of campaigns are long is written field by field, each list spliced in
    from its items' text: byte for byte what one ``json.dumps`` of the whole would give."""
    lists = _LISTS.get(type(value))
    if lists is None or not any(_spliced(getattr(value, name)) for name in lists):
        return _dumps(_encode(value))
    names = _FIELD_NAMES.get(type(value)) or tuple(f.name for f in dataclasses.fields(value))
    pieces: list[str] = []
    run: dict[str, Any] = {}  # fields between two spliced lists, encoded together
    for name in sorted(names):
        v = getattr(value, name)
        if _spliced(v):
            if run:
                pieces.append(_dumps(run)[1:-1])
                run = {}
            key = _KEY_JSON.get(name) or _KEY_JSON.setdefault(name, _dumps(name) + ":")
            memo = _ITEM_JSON
            pieces.append(key + "[" + ",".join([
                found[1] if (found := memo.get(id(item))) is not None and found[0] is item
                else _item_json(item) for item in v]) + "]")
        else:
            run[name] = v if type(v) in _PLAIN else _encode(v)
    if run:
        pieces.append(_dumps(run)[1:-1])
    return "{" + ",".join(pieces) + "}"


def from_json(kind: type[T], text: str) -> T:
    return kind(**_decode(json.loads(text)))


def request_hash(command: Any) -> str:
    """Fingerprint of a command without its idempotency key: same key + other hash = reuse."""
    body = _encode(command)
    body.pop("idempotency_key", None)
    # Ways to name the member added later: left out when unused, so a request made before they
    # existed keeps its fingerprint and its replays still match.
    for name in ("card_number", "store_code"):
        if body.get(name) is None:
            body.pop(name, None)
    if body.get("coupon_codes") == []:
        body.pop("coupon_codes")
    for line in body.get("lines") or ():  # a line's sku came with issue 12
        if isinstance(line, dict) and line.get("sku") is None:
            line.pop("sku", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One row of ``operations``: what a command did, tagged with partner, channel, purchase and
    rule version (guarantee 6), carrying the answer a replay returns."""

    id: str
    partner_id: str
    member_id: str | None
    kind: str
    points: int
    result: Any  # a result dataclass or a plain dict; stored as canonical JSON
    key: str | None = None
    fingerprint: str | None = None
    rule: RuleVersion | None = None
    occurred_at: datetime | None = None  # None: when it is recorded
    channel: str | None = None
    purchase_id: str | None = None
    parent_id: str | None = None
    hold_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None

    def row(self, recorded_at: datetime) -> dict[str, Any]:
        return {
            "id": self.id, "partner_id": self.partner_id, "member_id": self.member_id,
            "kind": self.kind, "idempotency_key": self.key, "request_hash": self.fingerprint,
            "rule_partner_id": self.rule.partner_id if self.rule else None,
            "rule_version": self.rule.version if self.rule else None,
            "points": self.points, "occurred_at": self.occurred_at or recorded_at,
            "recorded_at": recorded_at, "result": to_json(self.result),
            "channel": self.channel, "purchase_id": self.purchase_id,
            "parent_id": self.parent_id, "hold_id": self.hold_id,
            "amount_minor": self.amount_minor, "currency": self.currency,
        }
