"""A password reset's cut-off of a member's app tokens (decision 036), at the token service:
the comparison is to the microsecond, a tie is refused, a token issued one microsecond after
the cut-off works, a token signed before ``iat_us`` existed counts from the start of its
second, and a partner token is never cut off. The portal flow end to end is in
``tests/portal/test_password_reset.py``."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from authlib.oauth2.rfc6749 import InvalidGrantError
from sqlalchemy import Engine, event, insert

from gateway.auth.feed import microseconds
from gateway.auth.service import AuthService
from gateway.auth.throttle import in_process
from gateway.auth.tokens import InvalidToken, _cut_off
from gateway.core.clock import FixedClock
from gateway.db.auth_changes import bump
from gateway.db.tables import members
from gateway.db.uow import UnitOfWork
from gateway.members.credentials import check_sign_up, sign_in_limits, sign_up_in
from gateway.members.password_reset import create_link, reset_password
from gateway.members.sessions import cut_off_app_tokens

CUT_OFF = "the token was issued before the member's password was reset: sign in again"
MEMBER = "m-ada"
EMAIL, PASSWORD = "ada@example.org", "correct horse battery"
CALLBACK = "http://127.0.0.1/cb"


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


def test_a_code_exchanged_while_the_reset_commits_gets_no_token_that_outlives_it(
        auth: AuthService, engine: Engine, clock: FixedClock) -> None:
    # The exchange runs between the reset's reading of its clock and its commit: its token is
    # later than the cut-off, so the code's approval (before the reset) must be what refuses
    # it, and the exchange must see the reset's cut-off to do so. On PostgreSQL it read the
    # member before the reset committed and answered a token that outlived the reset.
    with UnitOfWork(engine) as uow:
        member = sign_up_in(uow.conn, clock.now(), check_sign_up(clock, EMAIL, PASSWORD)).member_id
        uow.commit()
    app = auth.clients.create(name="App", kind="app", redirect_uris=[CALLBACK],
                              actor="test").client
    codes = auth.server.codes
    codes.save("approved-before", client_id=app.client_id, member_id=member,
               redirect_uri=CALLBACK, scope="member", code_challenge="c" * 43, customer_id=None)
    link = create_link(engine, clock, EMAIL)
    assert link is not None
    clock.advance(timedelta(seconds=2))
    stored = codes.find("approved-before", app.client_id)
    assert stored is not None
    outcome: dict[str, Any] = {}

    def exchange() -> None:
        try:
            outcome["body"] = codes.exchange(app, stored)
        except InvalidGrantError as error:
            outcome["error"] = error.description

    exchanging = threading.Thread(target=exchange)

    def mid_reset(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "member_token_cutoffs" in statement and not exchanging.is_alive() and not outcome:
            clock.advance(timedelta(milliseconds=1))  # the exchange's token is later
            exchanging.start()
            exchanging.join(0.5)  # as far as it goes while the reset is not committed

    event.listen(engine, "before_cursor_execute", mid_reset)
    try:
        reset_password(engine, clock, sign_in_limits(in_process), link.token, "a new pass phrase",
                       address=None)
    finally:
        event.remove(engine, "before_cursor_execute", mid_reset)
        exchanging.join(10)
    auth.feed.changed()  # as the portal does after the reset commits
    if "body" in outcome:  # a token answered: it must not outlive the reset
        with pytest.raises(InvalidToken, match="password was reset"):
            auth.tokens.verify(outcome["body"]["access_token"])
    assert outcome.get("error") == ("the code was approved before the member's password was "
                                    "reset; ask again")


def test_a_cut_off_committed_during_a_poll_is_seen_on_the_next_call(
        auth: AuthService, engine: Engine, clock: FixedClock, app_member: str) -> None:
    # A poll already past its reads when the reset commits and tells the feed (changed())
    # loaded the state without the cut-off; it then marked itself fresh, undoing changed(), so
    # this process accepted the member's old tokens for another refresh_s instead of at once.
    auth.feed.state()
    armed = [True]

    def reset_now(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if armed[0] and "FROM member_token_cutoffs" in statement:
            armed[0] = False
            cut_off(auth, engine, clock)  # commits on another connection, then changed()

    with engine.begin() as conn:
        bump(conn)  # some other change (a client, a revocation): the next poll reloads
    auth.feed.changed()
    event.listen(engine, "after_cursor_execute", reset_now)
    try:
        assert MEMBER not in auth.feed.state().cutoffs  # the poll in flight: loaded before
    finally:
        event.remove(engine, "after_cursor_execute", reset_now)
    assert not armed[0]
    assert auth.feed.cutoff(MEMBER) == microseconds(clock.now())
