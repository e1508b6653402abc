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
from gateway.core.errors import (
    ConsentRequired,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InvalidInput,
    UnknownMember,
)
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
from gateway.members import consent
from gateway.members.guesses import CodeGuesses
from gateway.members.identity import IdentityRepository, is_card_number
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
    # Budgets for codes typed at a till (gateway.members.guesses), in process or Redis.
    guesses: CodeGuesses = field(default_factory=CodeGuesses.build)


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
    check_key(key)
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


@dataclass(frozen=True, slots=True)
class Who:
    """How a points command names its member, checked before any transaction: a linked
    customer id, a bare card number (earn only) or a store code (with its signing secret, read
    outside the transaction)."""

    partner_id: str
    customer_id: str | None = None
    card_number: str | None = None
    store_code: str | None = None
    secret: bytes = b""

    @property
    def by_card(self) -> bool:
        return self.card_number is not None

    def member_in(self, tx: Tx, *, spend: bool) -> str:
        """The member, inside the command's transaction (result code UNKNOWN_MEMBER); a store
        code used to spend gives its one consent use here, undone if the command fails."""
        if self.store_code is not None:
            return consent.member_for_store_code(tx.uow.conn, tx.now, self.secret,
                                                 self.partner_id, self.store_code, consent=spend)
        if self.card_number is not None:
            row = IdentityRepository(tx.uow.conn).member_by_card(self.card_number)
            if row is None or row.status != "active":
                raise UnknownMember("no coalition card with this number", field="cardNumber")
            return row.id
        assert self.customer_id is not None
        return member_of(tx, self.partner_id, self.customer_id)


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} characters", field="idempotencyKey"
        )


def who_named(partner_id: str, customer_id: str | None, card_number: str | None,
              store_code: str | None, *, spend: bool) -> Who:
    """Exactly one way to name the member, checked without I/O: CONSENT_REQUIRED for a card
    number that would spend (whatever else is wrong), then INVALID_INPUT for the shape."""
    if spend and card_number is not None:
        raise ConsentRequired(
            "a card number may earn but never spend: link the customer with the member's "
            "consent, or scan the store code their app shows", field="cardNumber")
    given = [name for name, value in (("customerId", customer_id), ("cardNumber", card_number),
                                      ("storeCode", store_code)) if value is not None]
    if len(given) != 1:
        ways = "customerId or storeCode" if spend else "customerId, cardNumber or storeCode"
        raise InvalidInput(f"give exactly one of {ways}", field=given[-1] if given
                           else "customerId")
    if card_number is not None:
        if not is_card_number(card_number):
            raise InvalidInput("cardNumber is not a coalition card number (16 digits, Luhn)",
                               field="cardNumber")
        return Who(partner_id, card_number=card_number)
    if store_code is not None:
        consent.check_store_code(store_code)
        return Who(partner_id, store_code=store_code)
    return Who(partner_id, customer_id=customer_id)


def admit(ctx: LedgerContext, who: Who) -> Who:
    """The I/O a valid request needs before its transaction: a store code typed as digits
    counts against the partner's budget (RATE_LIMITED), and its signing secret is read."""
    if who.store_code is None:
        return who
    if not consent.is_scanned(who.store_code):
        ctx.guesses.store_digits_attempt(who.partner_id)
    return Who(who.partner_id, store_code=who.store_code,
               secret=consent.store_code_secret(ctx.engine, ctx.clock))


def identify(ctx: LedgerContext, partner_id: str, customer_id: str | None,
             card_number: str | None, store_code: str | None, *, spend: bool) -> Who:
    """Exactly one way to name the member; a card number never spends (CONSENT_REQUIRED). A
    store code typed as digits counts against the partner's budget (RATE_LIMITED)."""
    return admit(ctx, who_named(partner_id, customer_id, card_number, store_code, spend=spend))


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
