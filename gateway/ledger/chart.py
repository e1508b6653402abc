"""The chart of accounts: every account the ledger knows, named in one place.

Member accounts keep a stored balance (the overdraft check needs it in O(1)); partner and
coalition accounts are append-only legs whose balance is derived by aggregation, so the hot
accounts every earn and redeem touch never serialise writers (DESIGN §4, "Hot accounts")."""

from __future__ import annotations

import enum


class AccountKind(enum.StrEnum):
    WALLET = "wallet"  # the member's spendable points (>= 0)
    HELD = "held"  # points authorised for a redemption, not yet captured (>= 0)
    PENDING = "pending"  # earned points waiting out a return window (>= 0)
    DEBT = "debt"  # points a return took beyond the wallet (<= 0), repaid from future earns
    ISSUED = "issued"  # partner: points it issued (its liability to fund)
    REDEEMED = "redeemed"  # partner: points members spent there (the coalition owes it)
    PROMOTIONS = "promotions"  # partner-funded campaigns
    BONUS = "bonus"  # coalition-funded bonuses
    BREAKAGE = "breakage"  # expired points


MEMBER_KINDS = (AccountKind.WALLET, AccountKind.HELD, AccountKind.PENDING, AccountKind.DEBT)
STORED_BALANCE_KINDS = frozenset(MEMBER_KINDS)


def member_account(member_id: str, kind: AccountKind) -> str:
    return f"member:{member_id}:{kind}"


def partner_account(partner_id: str, kind: AccountKind) -> str:
    return f"partner:{partner_id}:{kind}"


def coalition_account(kind: AccountKind) -> str:
    return f"coalition:{kind}"
