"""What every ledger command needs before its transaction: the engine, the rules in force, the
clock, the idempotency locks and code budgets (``LedgerContext``), and the checks on a request
alone that every command shares (the key, the currency)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.core.errors import CurrencyMismatch, InvalidInput
from gateway.core.locks import InProcessKeyLocks, KeyLocks
from gateway.core.money import Money
from gateway.members.guesses import CodeGuesses
from gateway.promotions.engine import CompiledCampaign
from gateway.promotions.model import Trigger
from gateway.promotions.tiers import TierProgramme
from partners.config import PartnerDefinition, RuleVersion

MAX_KEY_LENGTH = 200


class RuleSource(Protocol):
    """The rules in force; ``partners.registry.Registry`` or a refreshing wrapper around it."""

    def partner(self, partner_id: str) -> PartnerDefinition: ...

    def rule_at(self, partner_id: str, at: datetime) -> RuleVersion: ...

    def rule(self, partner_id: str, version: int) -> RuleVersion: ...


class CampaignSource(Protocol):
    """The campaigns in force, compiled (``gateway.rules.campaigns.CampaignBook``)."""

    def candidates(self, partner_id: str, channel: str, at: datetime,
                   trigger: Trigger = Trigger.PURCHASE) -> tuple[CompiledCampaign, ...]: ...


class NoCampaigns:
    """No campaign anywhere: the source of a context built without one (tools, old tests)."""

    def candidates(self, partner_id: str, channel: str, at: datetime,
                   trigger: Trigger = Trigger.PURCHASE) -> tuple[CompiledCampaign, ...]:
        return ()


@dataclass
class LedgerContext:
    engine: Engine
    rules: RuleSource
    clock: Clock
    # Called with (operation kind, partner id) after a command commits (not on replays): the
    # app counts operations by kind and partner for /metrics.
    on_commit: Callable[[str, str], None] | None = None
    # In-flight idempotency locks (in process, or Redis with REDIS_URL); see gateway.core.locks.
    locks: KeyLocks = field(default_factory=InProcessKeyLocks)
    # Budgets for codes typed at a till (gateway.members.guesses), in process or Redis.
    guesses: CodeGuesses = field(default_factory=CodeGuesses.build)
    # The campaigns in force (issue 12, decision 020); none unless the app wires its book.
    campaigns: CampaignSource = field(default_factory=NoCampaigns)
    # The coalition's tier programme (decision 026): earns and returns keep qualifying points
    # and the load step reads the tier; None: no programme, nothing kept or read.
    tiers: TierProgramme | None = None


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} characters", field="idempotencyKey"
        )


def require_currency(partner: PartnerDefinition, money: Money, field: str) -> None:
    if money.currency != partner.currency:
        raise CurrencyMismatch(expected=partner.currency, got=money.currency, field=field)
