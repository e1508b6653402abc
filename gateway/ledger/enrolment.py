"""Enrolment and sign-up: a new member and their ledger accounts, in one transaction.

Identity (the member row, the partner's link, the credentials) is the members package's
(:func:`gateway.members.service.enrol_in`, :func:`gateway.members.credentials.sign_up_in`); the
ledger opens the new member's four accounts beside it and commits, so a member never exists
without a wallet to lock (``LedgerRepository.lock_member``) and the members package stays below
the ledger (docs/decisions/011)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.db.uow import UnitOfWork
from gateway.ledger.context import LedgerContext
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.runner import Tx
from gateway.ledger.welcome import post_welcome
from gateway.members.credentials import (
    EmailTaken,
    SignedUp,
    card_of_email,
    check_sign_up,
    normalise_email,
    sign_up_in,
)
from gateway.members.identity import PAIRWISE_SECRET
from gateway.members.secrets import server_secret
from gateway.members.service import Membership, check_customer_id, enrol_in, retried
from gateway.promotions import referrals


def enrol_customer(engine: Engine, clock: Clock, partner_id: str, customer_id: str, *,
                   ledger: LedgerContext | None = None,
                   referral_code: str | None = None) -> Membership:
    """Create a member with an empty wallet, linked to this partner's customer. Enrolling a
    customer that is already linked returns that membership (``created`` false): retries are
    safe without a key. With ``ledger``, enrolment campaigns post their welcome bonus in the
    same transaction (``gateway.ledger.welcome``). ``referral_code``: who referred the new
    member, recorded in the same transaction (decision 025; refused codes refuse the
    enrolment, nothing written); ignored when the customer was enrolled already."""
    check_customer_id(customer_id)
    pairwise = server_secret(engine, clock, PAIRWISE_SECRET)
    return retried(lambda: _enrol(engine, clock, pairwise, partner_id, customer_id, ledger,
                                  referral_code))


def _enrol(engine: Engine, clock: Clock, pairwise: bytes, partner_id: str,
           customer_id: str, ledger: LedgerContext | None = None,
           referral_code: str | None = None) -> Membership:
    with UnitOfWork(engine) as uow:
        now = clock.now()
        membership = enrol_in(uow.conn, now, pairwise, partner_id, customer_id)
        if membership.created:
            LedgerRepository(uow.conn).member_accounts(membership.member_id)
            if referral_code is not None:
                referrals.refer(uow.conn, membership.member_id, referral_code, now,
                                via="enrolment", partner_id=partner_id)
            if ledger is not None:
                post_welcome(Tx.on(uow.conn, now), ledger, partner_id, membership.member_id)
            uow.commit()
        return membership


def sign_up(engine: Engine, clock: Clock, email: str, password: str, *,
            birth_date: date | None = None, language: str | None = None) -> SignedUp:
    """A new member (card number, empty wallet) who signs in with ``email`` and ``password``."""
    form = check_sign_up(clock, email, password, birth_date=birth_date, language=language)
    with UnitOfWork(engine) as uow:
        made = sign_up_in(uow.conn, clock.now(), form)
        LedgerRepository(uow.conn).member_accounts(made.member_id)  # as enrol_customer does
        uow.commit()
    return made


def ensure_demo_member(engine: Engine, clock: Clock, email: str, password: str) -> str:
    """Demo mode only: a member who signs in with these credentials; their card number.
    Idempotent (several workers may start at once: a lost sign-up race reads the winner's)."""
    address = normalise_email(email)
    for _ in range(2):
        card = card_of_email(engine, address)
        if card is not None:
            return card
        try:
            return sign_up(engine, clock, address, password).card_number
        except EmailTaken:
            continue
    raise RuntimeError("could not make the demo member")
