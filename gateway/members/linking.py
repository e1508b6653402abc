"""Link a partner's customer to a coalition member, only with the member's consent (DESIGN §6):
a one-time link code the member made, or a store code they showed at the till. (The third way,
the OAuth authorization code flow, calls ``MemberRepository.link(..., via="oauth")`` itself.)

A partner's word alone never links. Every wrong, expired, used or someone else's code gives the
one answer ``UNKNOWN_MEMBER``, so a partner cannot learn whether a member exists, and every
attempt counts against the customer's and the partner's budgets (gateway.members.guesses)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine

from gateway.core.clock import Clock
from gateway.core.errors import AlreadyLinked, InvalidInput
from gateway.db.uow import UnitOfWork
from gateway.members.consent import (
    check_store_code,
    member_for_link_code,
    member_for_store_code,
    store_code_secret,
)
from gateway.members.guesses import CodeGuesses
from gateway.members.identity import PAIRWISE_SECRET, member_reference
from gateway.members.repository import MemberRepository
from gateway.members.secrets import server_secret
from gateway.members.service import Membership, check_customer_id, retried


def link_customer(
    engine: Engine, clock: Clock, guesses: CodeGuesses, partner_id: str, customer_id: str, *,
    link_code: str | None = None, store_code: str | None = None,
) -> Membership:
    """Link this partner's customer to the member who consented: with a one-time link code the
    member made, or a store code they showed at the till. A partner's word alone never links:
    a wrong, expired, used or someone else's code answers UNKNOWN_MEMBER, always the same, and
    every attempt counts against the customer's and the partner's budgets (RATE_LIMITED)."""
    check_customer_id(customer_id)
    if (link_code is None) == (store_code is None):
        raise InvalidInput("give exactly one of linkCode or storeCode",
                           field="storeCode" if store_code is not None else "linkCode")
    if store_code is not None:
        check_store_code(store_code)
    guesses.link_attempt(partner_id, customer_id)
    secret = store_code_secret(engine, clock) if store_code is not None else b""
    pairwise = server_secret(engine, clock, PAIRWISE_SECRET)  # read before the transaction

    def consented(conn: Connection, now: datetime) -> tuple[str, str]:
        if link_code is not None:
            return member_for_link_code(conn, now, partner_id, link_code), "link_code"
        assert store_code is not None
        return member_for_store_code(conn, now, secret, partner_id, store_code,
                                     consent=True), "store_code"

    return retried(lambda: _link(engine, clock, pairwise, partner_id, customer_id, consented))


def _link(engine: Engine, clock: Clock, pairwise: bytes, partner_id: str, customer_id: str,
          consented: Callable[[Connection, datetime], tuple[str, str]]) -> Membership:
    with UnitOfWork(engine) as uow:
        repo, now = MemberRepository(uow.conn), clock.now()
        member_id, via = consented(uow.conn, now)
        # Locked first, so two links of one member at one partner (under two customer ids)
        # cannot both find it unlinked there: nothing in the schema forbids the second row.
        repo.lock(member_id)
        reference = member_reference(pairwise, partner_id, member_id)
        current = repo.member_for_customer(partner_id, customer_id)
        if current == member_id:
            linked_at = repo.linked_at(partner_id, customer_id)
            assert linked_at is not None
            uow.commit()  # the code is used up either way
            return Membership(member_id, customer_id, partner_id, linked_at, created=False,
                              member_reference=reference)
        if current is not None:
            raise AlreadyLinked(
                f"customer {customer_id!r} is linked to another member", field="customerId"
            )
        if repo.customer_for_member(partner_id, member_id) is not None:
            raise AlreadyLinked(
                "this member is already linked at this partner under another customer id",
                field="linkCode" if via == "link_code" else "storeCode",
            )
        repo.link(partner_id, customer_id, member_id, now, via=via,
                  actor=f"partner:{partner_id}")
        uow.commit()
        return Membership(member_id, customer_id, partner_id, now, created=True,
                          member_reference=reference)
