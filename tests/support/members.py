"""What a member does in tests, the member's way: make a link code or show a store code (the
member API and portal call the same domain functions), get a member token through a first-party
``app`` client, hold a second account they can prove. Partners never learn a member id, so tests
name the member by a customer id some partner already linked."""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from gateway.app import Gateway
from gateway.core.clock import Clock
from gateway.db import tables as t
from gateway.members import consent
from gateway.members.codes import StoreCode
from gateway.members.guesses import CodeGuesses
from gateway.members.identity import ACTIVATION_CODE_LENGTH, hash_code, new_code
from gateway.members.linking import link_customer
from gateway.members.service import Membership
from tests.support.harness import Api

LINK = """mutation($c: ID!, $code: String!) { linkCustomer(input: {customerId: $c,
  linkCode: $code}) { __typename ... on LinkCustomerSuccess { created member {
  customerId memberReference } } ... on Error { code message field } } }"""


def member_id_of(gw: Gateway, partner_id: str, customer_id: str) -> str:
    """The coalition member id behind a partner's customer id (what only the gateway knows)."""
    with gw.services.engine.connect() as conn:
        found = conn.execute(select(t.linked_accounts.c.member_id).where(
            t.linked_accounts.c.partner_id == partner_id,
            t.linked_accounts.c.customer_id == customer_id,
            t.linked_accounts.c.closed_at.is_(None))).scalar_one()
    return str(found)


def card_number_of(gw: Gateway, member_id: str) -> str:
    with gw.services.engine.connect() as conn:
        number = conn.execute(select(t.members.c.card_number)
                              .where(t.members.c.id == member_id)).scalar_one()
    return str(number)


def link_code_for(gw: Gateway, partner_id: str, customer_id: str) -> str:
    """A link code made by the member linked to this customer id at this partner."""
    member_id = member_id_of(gw, partner_id, customer_id)
    return consent.create_link_code(gw.services.engine, gw.services.clock, member_id).code


def store_code_for(gw: Gateway, partner_id: str, customer_id: str) -> StoreCode:
    """A store code shown by the member linked to this customer id at this partner."""
    member_id = member_id_of(gw, partner_id, customer_id)
    return consent.issue_store_code(gw.services.engine, gw.services.clock, member_id)


def link_with_code(engine: Engine, clock: Clock, partner_id: str, customer_id: str,
                   member_id: str) -> Membership:
    """The member makes a link code and the partner links its customer with it (domain level;
    fresh in-process budgets, so setting up many links is never rate limited)."""
    code = consent.create_link_code(engine, clock, member_id).code
    return link_customer(engine, clock, CodeGuesses.build(), partner_id, customer_id,
                         link_code=code)


def member_api(gateway: Gateway, member_id: str, scopes: tuple[str, ...] = ("member",)) -> Api:
    """An Api speaking for ``member_id`` through a first-party ``app`` client."""
    created = gateway.auth.clients.create(name=f"app for {member_id}", kind="app",
                                          partner_id=None, scopes=["member"], actor="test")
    token = gateway.auth.tokens.issue(created.client, list(scopes), member_id=member_id)
    return Api(gateway, None, created.client.client_id, created.secret,
               token=token.access_token)


def card_of(gateway: Gateway, member_id: str) -> str:
    with gateway.services.engine.connect() as conn:
        card = conn.execute(select(t.members.c.card_number)
                            .where(t.members.c.id == member_id)).scalar_one()
    return str(card)


def give_activation_code(gateway: Gateway, member_id: str) -> str:
    """A fresh activation code for the member (as if printed on a till receipt)."""
    code = new_code(ACTIVATION_CODE_LENGTH)
    with gateway.services.engine.begin() as conn:
        conn.execute(update(t.members).where(t.members.c.id == member_id)
                     .values(activation_code_hash=hash_code(code)))
    return code
