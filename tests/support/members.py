"""Member-side helpers for the tests: an ``app`` client (the coalition's own portal/app), member
tokens minted by the real TokenService, and a second account a member can prove they hold."""

from __future__ import annotations

from sqlalchemy import select, update

from gateway.app import Gateway
from gateway.db import tables as t
from gateway.members.identity import ACTIVATION_CODE_LENGTH, hash_code, new_code
from tests.support.harness import Api


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
