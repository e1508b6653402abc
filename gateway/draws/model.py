"""A draw's terms, checked strictly before anything is stored (each refusal names the GraphQL
input field at fault), and the views the API, the CLI and the portal read.

Owner: a partner (its own draws through GraphQL, scope ``offers:manage``) or the coalition
(``owner=None``, through the CLI). Entries come from qualifying purchases (``entries_per_purchase``
per purchase at one of ``purchase_partners`` of at least ``min_spend``) and/or are bought with
points (``points_per_entry``), up to ``max_entries_per_member`` per member in all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.core.errors import InvalidInput, NotFound
from gateway.core.money import Money
from gateway.ledger.context import RuleSource

MAX_PRIZES = 50
MAX_SLOTS = 100  # prizes in all (the winners list is one GraphQL page)
MAX_ENTRIES_PER_PURCHASE = 1000
MAX_ENTRIES_PER_MEMBER = 100_000
MAX_POINTS_PER_ENTRY = 10**9
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Prize:
    name: str
    quantity: int


@dataclass(frozen=True, slots=True)
class DrawTerms:
    name: str
    opens_at: datetime
    closes_at: datetime
    prizes: tuple[Prize, ...]
    max_entries_per_member: int
    entries_per_purchase: int | None = None
    purchase_partners: tuple[str, ...] = ()  # empty: the owner's (a partner); every partner
    # (the coalition)
    min_spend: Money | None = None
    points_per_entry: int | None = None
    one_prize_per_member: bool = True


@dataclass(frozen=True, slots=True)
class Draw:
    """A stored draw; ``seed`` only once it is closed (secret before)."""

    id: str
    owner_partner_id: str | None
    name: str
    opens_at: datetime
    closes_at: datetime
    prizes: tuple[Prize, ...]
    max_entries_per_member: int
    entries_per_purchase: int | None
    purchase_partners: tuple[str, ...] | None  # None: no purchase entries; (): every partner
    min_spend: Money | None
    points_per_entry: int | None
    one_prize_per_member: bool
    commitment: str
    status: str  # open | closed
    seed: str | None
    entry_list_hash: str | None
    closed_at: datetime | None
    created_at: datetime

    def taking_entries(self, at: datetime) -> bool:
        return self.status == "open" and self.opens_at <= at < self.closes_at


def _aware(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} needs a time zone offset", field=field)


def _between(value: int | None, low: int, high: int, field: str) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}", field=field)


def check_terms(terms: DrawTerms, owner: str | None, rules: RuleSource,
                now: datetime) -> DrawTerms:
    """``terms`` with ``purchase_partners`` filled in for a partner's draw, or InvalidInput /
    NotFound naming the field."""
    if not terms.name.strip() or len(terms.name) > MAX_NAME:
        raise InvalidInput(f"name must be 1 to {MAX_NAME} characters", field="name")
    _aware(terms.opens_at, "opensAt")
    _aware(terms.closes_at, "closesAt")
    if terms.opens_at < now:
        raise InvalidInput("opensAt is in the past: the commitment must be published before "
                           "entries open", field="opensAt")
    if terms.closes_at <= terms.opens_at:
        raise InvalidInput("closesAt must be after opensAt", field="closesAt")
    _check_prizes(terms.prizes)
    _between(terms.max_entries_per_member, 1, MAX_ENTRIES_PER_MEMBER, "maxEntriesPerMember")
    _between(terms.entries_per_purchase, 1, MAX_ENTRIES_PER_PURCHASE, "entriesPerPurchase")
    _between(terms.points_per_entry, 1, MAX_POINTS_PER_ENTRY, "pointsPerEntry")
    if terms.entries_per_purchase is None and terms.points_per_entry is None:
        raise InvalidInput("a draw needs entries from purchases (entriesPerPurchase) or for "
                           "points (pointsPerEntry), or both", field="entriesPerPurchase")
    if terms.points_per_entry is not None and owner is None:
        raise InvalidInput("a coalition draw cannot sell entries for points: the points spent "
                           "settle to a partner owner (decision 033)", field="pointsPerEntry")
    if terms.points_per_entry is not None and owner is not None:
        rules.partner(owner)  # the owner exists (settles the points as a redemption)
    partners = _purchase_partners(terms, owner, rules)
    if terms.entries_per_purchase is None:
        if terms.purchase_partners or terms.min_spend is not None:
            raise InvalidInput("purchasePartners and minSpend need entriesPerPurchase",
                               field="entriesPerPurchase")
        partners = ()
    _check_min_spend(terms.min_spend, partners, rules)
    return DrawTerms(terms.name.strip(), terms.opens_at, terms.closes_at, terms.prizes,
                     terms.max_entries_per_member, terms.entries_per_purchase, partners,
                     terms.min_spend, terms.points_per_entry, terms.one_prize_per_member)


def _check_prizes(prizes: Sequence[Prize]) -> None:
    if not 1 <= len(prizes) <= MAX_PRIZES:
        raise InvalidInput(f"a draw has 1 to {MAX_PRIZES} prizes", field="prizes")
    for n, prize in enumerate(prizes):
        if not prize.name.strip() or len(prize.name) > MAX_NAME:
            raise InvalidInput(f"prize {n + 1}: name must be 1 to {MAX_NAME} characters",
                               field="prizes")
        if prize.quantity < 1:
            raise InvalidInput(f"prize {n + 1}: quantity must be at least 1", field="prizes")
    if sum(p.quantity for p in prizes) > MAX_SLOTS:
        raise InvalidInput(f"a draw has at most {MAX_SLOTS} prizes in all (quantities summed)",
                           field="prizes")


def _purchase_partners(terms: DrawTerms, owner: str | None,
                       rules: RuleSource) -> tuple[str, ...]:
    named = tuple(dict.fromkeys(terms.purchase_partners))
    if owner is not None:
        if named and named != (owner,):
            raise InvalidInput("a partner's draw counts purchases at that partner only",
                               field="purchasePartners")
        return (owner,)
    for partner_id in named:
        try:
            rules.partner(partner_id)
        except NotFound:
            raise InvalidInput(f"no partner {partner_id!r}", field="purchasePartners") from None
    return tuple(sorted(named))


def _check_min_spend(min_spend: Money | None, partners: Sequence[str],
                     rules: RuleSource) -> None:
    if min_spend is None:
        return
    if min_spend.amount_minor < 0:
        raise InvalidInput("minSpend must not be negative", field="minSpend")
    if not partners:
        raise InvalidInput("minSpend needs purchasePartners (a minimum is in one currency)",
                           field="minSpend")
    for partner_id in partners:
        if rules.partner(partner_id).currency != min_spend.currency:
            raise InvalidInput(f"minSpend is in {min_spend.currency}; {partner_id} sells in "
                               f"{rules.partner(partner_id).currency}", field="minSpend")
