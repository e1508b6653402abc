"""A password reset's cut-off of a member's app tokens (decision 036), at the token service:
the comparison is to the microsecond, a tie is refused, a token issued one microsecond after
the cut-off works, a token signed before ``iat_us`` existed counts from the start of its
second, and a partner token is never cut off. The portal flow end to end is in
``tests/portal/test_password_reset.py``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert

from gateway.auth.feed import microseconds
from gateway.auth.service import AuthService
from gateway.auth.tokens import InvalidToken, _cut_off
from gateway.core.clock import FixedClock
from gateway.db.tables import members
from gateway.members.sessions import cut_off_app_tokens

CUT_OFF = "the token was issued before the member's password was reset: sign in again"
MEMBER = "m-ada"


@pytest.fixture
def app_member(engine: Engine, clock: FixedClock) -> str:
    with engine.begin() as conn:
        conn.execute(insert(members).values(id=MEMBER, created_at=clock.now(), status="active"))
    return MEMBER


def cut_off(auth: AuthService, engine: Engine, clock: FixedClock) -> None:
    with engine.begin() as conn:
        cut_off_app_tokens(conn, MEMBER, clock.now())
    auth.feed.changed()  # as the portal does after the reset commits


def test_a_tie_is_refused_and_one_microsecond_later_is_not(
        auth: AuthService, engine: Engine, clock: FixedClock, app_member: str) -> None:
    app = auth.clients.create(name="App", kind="app", redirect_uris=["http://127.0.0.1/cb"],
                              actor="test").client
    clock.advance(timedelta(milliseconds=400, microseconds=7))
    before = auth.tokens.issue(app, ["member"], member_id=MEMBER).access_token
    tie = auth.tokens.issue(app, ["member"], member_id=MEMBER).access_token
    assert auth.tokens.verify(tie).member_id == MEMBER
    cut_off(auth, engine, clock)
    clock.advance(timedelta(microseconds=1))
    after = auth.tokens.issue(app, ["member"], member_id=MEMBER).access_token

    for token in (before, tie):
        with pytest.raises(InvalidToken) as refused:
            auth.tokens.verify(token)
        assert (refused.value.description, refused.value.code) == (CUT_OFF, "UNAUTHENTICATED")
        with pytest.raises(InvalidToken, match="password was reset"):  # the no-I/O path
            auth.tokens.verify_in_memory(token, auth.feed.fresh())
    assert auth.tokens.verify(after).member_id == MEMBER
    claims = auth.tokens.decode(after)
    assert claims["iat_us"] == microseconds(clock.now())
    assert claims["iat"] == claims["iat_us"] // 1_000_000


def test_a_later_reset_moves_the_cut_off(
        auth: AuthService, engine: Engine, clock: FixedClock, app_member: str) -> None:
    app = auth.clients.create(name="App", kind="app", redirect_uris=["http://127.0.0.1/cb"],
                              actor="test").client
    cut_off(auth, engine, clock)
    clock.advance(timedelta(seconds=5))
    between = auth.tokens.issue(app, ["member"], member_id=MEMBER).access_token
    assert auth.tokens.verify(between).member_id == MEMBER
    clock.advance(timedelta(seconds=5))
    cut_off(auth, engine, clock)  # the upsert replaces the first
    with pytest.raises(InvalidToken, match="password was reset"):
        auth.tokens.verify(between)


def test_a_token_without_iat_us_counts_from_the_start_of_its_second() -> None:
    second = 1_800_000_000
    cutoffs = {MEMBER: second * 1_000_000 + 500_000}.get  # the reset at .500
    assert _cut_off({"member_id": MEMBER, "iat": second}, cutoffs)  # could be .200 or .700
    assert not _cut_off({"member_id": MEMBER, "iat": second + 1}, cutoffs)
    assert not _cut_off({"member_id": MEMBER, "iat": second, "iat_us": second * 1_000_000
                         + 500_001}, cutoffs)
    assert _cut_off({"member_id": MEMBER, "iat": second, "iat_us": second * 1_000_000
                     + 500_000}, cutoffs)
    # Partner tokens carry no member: never cut off, whatever the member's cut-off.
    assert not _cut_off({"iat": second - 60, "partner_id": "shop"}, cutoffs)
    assert not _cut_off({"member_id": "m-other", "iat": second - 60}, cutoffs)
