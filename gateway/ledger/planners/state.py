"""What a planner is given (the member's state, open lots, holds) and what it returns
(moves, new lots and holds, postings, the plan)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from gateway.ledger.chart import AccountKind
from gateway.ledger.lot_repository import LotTake
from gateway.ledger.model import OperationRecord
from gateway.ledger.repository import Account
from gateway.promotions.repository import AwardRow

R = TypeVar("R")


# --- the state a planner is given -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberState:
    """The member's four accounts and their stored balances, as loaded once per command."""

    member_id: str
    accounts: Mapping[AccountKind, Account]
    balances: Mapping[AccountKind, int]

    def account(self, kind: AccountKind) -> Account:
        return self.accounts[kind]

    @property
    def available(self) -> int:
        return self.balances[AccountKind.WALLET]

    @property
    def debt(self) -> int:
        """Points owed, as a positive number (the debt account's balance is <= 0)."""
        return -self.balances[AccountKind.DEBT]


@dataclass(frozen=True, slots=True)
class OpenLot:
    """A lot as a planner sees it: what is left of it, where from, until when."""

    id: int
    origin_partner_id: str
    remaining: int
    expires_at: datetime
    pending: bool = False
    available_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HoldState:
    """An authorised hold, with the lot movements its authorisation made (points < 0)."""

    id: str
    partner_id: str
    member_id: str
    operation_id: str
    points: int
    basket_amount_minor: int
    purchase_id: str | None
    status: str
    expires_at: datetime
    created_at: datetime
    takes: tuple[LotTake, ...] = ()


# --- what a planner returns -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Move:
    """One transfer to post: ``amount`` points from ``debit`` to ``credit``."""

    debit: Account
    credit: Account
    amount: int


@dataclass(frozen=True, slots=True)
class NewLot:
    """A lot to create; ``taken`` of its points go at once (an earn that repays debt)."""

    origin_partner_id: str
    points: int
    earned_at: datetime
    expires_at: datetime
    available_at: datetime
    taken: int = 0


@dataclass(frozen=True, slots=True)
class NewHold:
    id: str
    partner_id: str
    member_id: str
    points: int
    basket_amount_minor: int
    purchase_id: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Posting:
    """One operation and everything it writes, in the order it is written. ``record`` is None
    for the one posting that records no operation: housekeeping releasing pending lots that were
    fully returned while pending (it only has ``released_lots``)."""

    record: OperationRecord | None
    moves: tuple[Move, ...] = ()
    lot_moves: tuple[LotTake, ...] = ()
    new_lots: tuple[NewLot, ...] = ()
    new_hold: NewHold | None = None
    settle_hold: tuple[str, str, int] | None = None  # (hold id, status, captured points)
    released_lots: tuple[int, ...] = ()  # pending lots whose return window has passed
    # Campaigns (decision 020): the promotion_awards rows the operation appends, and what it
    # consumes (or, negative, releases) of budgeted campaigns' counters: (id, points, rewards).
    awards: tuple[AwardRow, ...] = ()
    counters: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Plan(Generic[R]):
    result: R
    postings: tuple[Posting, ...] = field(default_factory=tuple)
