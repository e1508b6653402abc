"""Signing keys: ES256 only, created on first use, rotated with a grace period, published."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from gateway.auth.clients import CreatedClient
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken
from gateway.core.clock import FixedClock
from gateway.db.tables import signing_keys
from gateway.settings import Settings


def _kid(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def test_no_key_until_first_use_then_exactly_one(auth: AuthService, engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(signing_keys)).scalar_one() == 0
    first = auth.keys.signing_key()
    again = auth.keys.signing_key()
    assert first.kid == again.kid
    with engine.connect() as conn:
        rows = conn.execute(select(signing_keys)).all()
    assert [(r.kid, r.retired_at) for r in rows] == [(first.kid, None)]
    assert json.loads(rows[0].public_jwk) == {
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": first.kid,
        "x": first.public_jwk["x"], "y": first.public_jwk["y"],
    }
    assert "d" not in json.loads(rows[0].public_jwk)  # never the private part


def test_a_second_process_reuses_the_stored_key(
    engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    one = AuthService(engine, settings, clock).keys.signing_key()
    two = AuthService(engine, settings, clock).keys.signing_key()
    assert one.kid == two.kid


async def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    http: httpx.AsyncClient,
    auth: AuthService,
    clock: FixedClock,
    shop_client: CreatedClient,
    get_token: Any,
    audit_rows: Any,
    engine: Engine,
) -> None:
    old_token = await get_token(http, shop_client)
    old_kid = _kid(old_token)
    new_key = auth.keys.rotate(actor="admin:t")
    assert new_key.kid != old_kid

    new_token = await get_token(http, shop_client)
    assert _kid(new_token) == new_key.kid
    assert auth.tokens.verify(old_token).partner_id == "shop"
    assert auth.tokens.verify(new_token).partner_id == "shop"

    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in jwks["keys"]] == [new_key.kid, old_kid]

    with engine.connect() as conn:
        retired = conn.execute(
            select(signing_keys.c.retired_at).where(signing_keys.c.kid == old_kid)
        ).scalar_one()
    assert retired == clock.now()
    last = audit_rows(engine)[-1]
    assert (last["actor"], last["action"], last["subject"], last["detail"]) == (
        "admin:t", "key.rotate", new_key.kid, {"alg": "ES256", "retired": [old_kid]}
    )


def test_retired_key_is_dropped_after_the_longest_token_lifetime(
    auth: AuthService, clock: FixedClock, shop_client: CreatedClient
) -> None:
    old_kid = auth.keys.signing_key().kid
    auth.keys.rotate(actor="admin:t")
    new_kid = auth.keys.signing_key().kid
    clock.advance(timedelta(seconds=900 + 30 - 1))
    assert [k["kid"] for k in auth.keys.jwks()["keys"]] == [new_kid, old_kid]
    clock.advance(timedelta(seconds=1))
    assert [k["kid"] for k in auth.keys.jwks()["keys"]] == [new_kid]
    assert auth.keys.verification_key(old_kid) is None


def test_rotation_by_another_process_is_picked_up_on_unknown_kid(
    engine: Engine, settings: Settings, clock: FixedClock, shop_client: CreatedClient
) -> None:
    ticks = iter(range(0, 1000, 5))
    verifier = AuthService(engine, settings, clock)
    verifier.keys._monotonic = lambda: float(next(ticks))  # each call: 5 s later
    verifier.keys.signing_key()  # loads the cache
    issuer = AuthService(engine, settings, clock)
    issuer.keys.rotate(actor="admin:t")
    token = issuer.tokens.issue(shop_client.client, {"points:earn"}).access_token
    assert verifier.tokens.verify(token).partner_id == "shop"


def test_unknown_kid_reloads_at_most_once_per_interval(
    engine: Engine, settings: Settings, clock: FixedClock, shop_client: CreatedClient
) -> None:
    verifier = AuthService(engine, settings, clock)
    verifier.keys._monotonic = lambda: 100.0  # time stands still
    verifier.keys.signing_key()
    issuer = AuthService(engine, settings, clock)
    issuer.keys.rotate(actor="admin:t")
    token = issuer.tokens.issue(shop_client.client, {"points:earn"}).access_token
    with pytest.raises(InvalidToken) as caught:
        verifier.tokens.verify(token)
    assert caught.value.description == "the token was signed by an unknown key"
    verifier.keys._monotonic = lambda: 101.0  # one reload interval later
    assert verifier.tokens.verify(token).partner_id == "shop"
