"""Enrol customers and read a member as one partner sees them (DESIGN §6); linking with the
member's consent is in :mod:`gateway.members.linking`. Enrolment here is identity only
(:func:`enrol_in`); :func:`gateway.ledger.enrolment.enrol_customer` wraps it in the transaction
that also opens the new member's ledger accounts.

A partner addresses members by its own customer ids only; every read here starts from the
partner's link, so another partner's customers, operations and holds simply do not exist
for it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.exc import IntegrityError

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.retry import retrying
from gateway.db.tables import (
    linked_accounts,
)
from gateway.db.uow import UnitOfWork
from gateway.members.identity import PAIRWISE_SECRET, member_reference
from gateway.members.repository import MemberRepository
from gateway.members.secrets import server_secret

MAX_CUSTOMER_ID = 128


@dataclass(frozen=True, slots=True)
class Membership:
    member_id: str
    customer_id: str
    partner_id: str
    linked_at: datetime
    created: bool
    # This partner's pairwise reference for the member: all a partner ever sees of who it is.
    member_reference: str = ""
    # Only in the answer that created the member at a till: printed on the receipt, shown once.
    card_number: str | None = None
    activation_code: str | None = None


def check_customer_id(customer_id: str) -> None:
    if not customer_id.strip() or len(customer_id) > MAX_CUSTOMER_ID:
        raise InvalidInput(
            f"customerId must be 1 to {MAX_CUSTOMER_ID} characters, not blank", field="customerId"
        )


def enrol_in(conn: Connection, now: datetime, pairwise: bytes, partner_id: str,
             customer_id: str) -> Membership:
    """The identity half of enrolment, inside the caller's write transaction: this partner's
    membership for the customer if linked already (``created`` false), else a new member with
    an activation code, linked. The ledger's enrolment (:mod:`gateway.ledger.enrolment`) opens
    a new member's accounts in the same transaction and commits."""
    repo = MemberRepository(conn)
    existing = repo.member_for_customer(partner_id, customer_id)
    if existing is not None:
        linked_at = repo.linked_at(partner_id, customer_id)
        assert linked_at is not None
        return Membership(existing, customer_id, partner_id, linked_at, created=False,
                          member_reference=member_reference(pairwise, partner_id, existing))
    new = repo.create(now, with_activation=True)
    repo.link(partner_id, customer_id, new.member_id, now, via="enrolment",
              actor=f"partner:{partner_id}")
    return Membership(new.member_id, customer_id, partner_id, now, created=True,
                      member_reference=member_reference(pairwise, partner_id, new.member_id),
                      card_number=new.card_number, activation_code=new.activation_code)


def retried(unit: Callable[[], Membership]) -> Membership:
    """Enrol and link check, then insert a link: a concurrent twin that inserted the same link
    first makes ours fail on the primary key. Run again, the check finds the twin's link and
    answers as a retry would (the same membership, or ALREADY_LINKED). Deadlocks and
    serialisation failures are retried too (gateway.db.retry)."""
    for attempt in range(3):
        try:
            return retrying(unit)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def find_memberships(
    engine: Engine, clock: Clock, partner_id: str, customer_ids: Collection[str]
) -> dict[str, Membership]:
    """This partner's links for many customer ids in one statement (the API's per-request
    loader batches lookups with it); a customer id with no link here is simply absent."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    pairwise = server_secret(engine, clock, PAIRWISE_SECRET)
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(_MEMBERSHIPS, {"partner_id": partner_id, "customers": wanted}
                                ).all()
    return {
        customer_id: Membership(member_id, customer_id, partner_id, linked_at, created=False,
                                member_reference=member_reference(pairwise, partner_id,
                                                                  member_id))
        for customer_id, member_id, linked_at in rows
    }


# --- read statements, built once ----------------------------------------------------------------
_MEMBERSHIPS = select(
    linked_accounts.c.customer_id, linked_accounts.c.member_id, linked_accounts.c.linked_at
).where(linked_accounts.c.partner_id == bindparam("partner_id"),
        linked_accounts.c.customer_id.in_(bindparam("customers", expanding=True)),
        linked_accounts.c.closed_at.is_(None))
