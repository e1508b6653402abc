"""What every ledger command needs: the engine, the rules in force, the clock, and the shared
steps (resolve the member, replay an idempotent request, record an operation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from gateway.core.clock import Clock
from gateway.core.errors import CurrencyMismatch, IdempotencyKeyReused, InvalidInput, UnknownMember
from gateway.core.ids import new_id
from gateway.core.locks import InProcessKeyLocks, KeyLocks
from gateway.core.money import Money
from gateway.db.uow import UnitOfWork
from gateway.ledger.model import (
    Earned,
    HoldCaptured,
    HoldPlaced,
    HoldVoided,
    Redeemed,
    Returned,
    from_json,
    request_hash,
    to_json,
)
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.retry import retrying
from gateway.members.repository import MemberRepository
from partners.config import PartnerDefinition, RuleVersion

R = TypeVar("R")

MAX_KEY_LENGTH = 200

# The operation kind each command records. Redeem and authorise take the same command, so the
# request hash alone cannot tell them apart: a key used for one is reused if sent to the other.
_KIND_OF_RESULT: dict[type, str] = {
    Earned: "earn", Redeemed: "redeem", HoldPlaced: "authorise", HoldCaptured: "capture",
    HoldVoided: "void", Returned: "return",
}


class RuleSource(Protocol):
    """The rules in force; ``partners.registry.Registry`` or a refreshing wrapper around it."""

    def partner(self, partner_id: str) -> PartnerDefinition: ...

    def rule_at(self, partner_id: str, at: datetime) -> RuleVersion: ...

    def rule(self, partner_id: str, version: int) -> RuleVersion: ...


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


@dataclass
class Tx:
    """One write transaction with its repositories and its single 'now'."""

    uow: UnitOfWork
    ledger: LedgerRepository
    members: MemberRepository
    now: datetime


def run_command(
    ctx: LedgerContext,
    partner_id: str,
    command: Any,
    result_type: type[R],
    body: Callable[[Tx, str], R],
) -> R:
    """Run ``body`` once per (partner, idempotency key): a replay returns the stored result,
    a reused key with another request is refused, and a concurrent duplicate that loses the
    race on the UNIQUE constraint is retried as a replay (guarantee 5). A transaction that
    PostgreSQL aborts as a deadlock or serialisation failure is run again whole."""
    key: str = command.idempotency_key
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} characters", field="idempotencyKey"
        )
    fingerprint = request_hash(command)
    with ctx.locks.hold(f"idem:{partner_id}:{key}"):
        return retrying(lambda: _run_once(ctx, partner_id, key, fingerprint, result_type, body))


def _replay(existing: Any, fingerprint: str, result_type: type[R], key: str) -> R:
    expected_kind = _KIND_OF_RESULT.get(result_type, existing.kind)
    if existing.request_hash != fingerprint or existing.kind != expected_kind:
        raise IdempotencyKeyReused(key)
    return from_json(result_type, existing.result)


def _run_once(
    ctx: LedgerContext,
    partner_id: str,
    key: str,
    fingerprint: str,
    result_type: type[R],
    body: Callable[[Tx, str], R],
) -> R:
    for attempt in range(3):
        try:
            with UnitOfWork(ctx.engine, write=True) as uow:
                tx = Tx(uow, LedgerRepository(uow.conn), MemberRepository(uow.conn),
                        ctx.clock.now())
                tx.ledger.lock_key(partner_id, key)
                existing = tx.ledger.find_by_key(partner_id, key)
                if existing is not None:
                    return _replay(existing, fingerprint, result_type, key)
                result = body(tx, fingerprint)
                uow.commit()
                if ctx.on_commit is not None:
                    ctx.on_commit(_KIND_OF_RESULT.get(result_type, "other"), partner_id)
                return result
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def member_of(tx: Tx, partner_id: str, customer_id: str) -> str:
    member_id = tx.members.member_for_customer(partner_id, customer_id)
    if member_id is None:
        raise UnknownMember(
            f"no member is linked to customer {customer_id!r} at this partner",
            field="customerId",
        )
    return member_id


def require_currency(partner: PartnerDefinition, money: Money, field: str) -> None:
    if money.currency != partner.currency:
        raise CurrencyMismatch(expected=partner.currency, got=money.currency, field=field)


def record_operation(
    tx: Tx,
    *,
    operation_id: str,
    partner_id: str,
    member_id: str | None,
    kind: str,
    points: int,
    result: Any,
    key: str | None = None,
    fingerprint: str | None = None,
    rule: RuleVersion | None = None,
    occurred_at: datetime | None = None,
    **extra: Any,
) -> None:
    values: dict[str, Any] = {
        "id": operation_id,
        "partner_id": partner_id,
        "member_id": member_id,
        "kind": kind,
        "idempotency_key": key,
        "request_hash": fingerprint,
        "rule_partner_id": rule.partner_id if rule else None,
        "rule_version": rule.version if rule else None,
        "points": points,
        "occurred_at": occurred_at or tx.now,
        "recorded_at": tx.now,
        "result": to_json(result),
        "channel": None,
        "purchase_id": None,
        "parent_id": None,
        "hold_id": None,
        "amount_minor": None,
        "currency": None,
    }
    values.update(extra)
    tx.ledger.insert_operation(values)


def operation_id() -> str:
    return new_id("op")
