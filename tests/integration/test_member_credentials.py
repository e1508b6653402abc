"""Member credentials on the real backends (SQLite or PostgreSQL; in-process limits or Redis):
sign-up rules, sign-in and claim rate limits per account and per address with back-off, and
rejections that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.auth.clients import ensure_demo_client
from gateway.core.errors import InvalidInput, RateLimited
from gateway.db import tables as t
from gateway.ledger import enrolment
from gateway.ledger.enrolment import enrol_customer
from gateway.limits import InProcessRateLimiter, RateLimiter
from gateway.members import credentials
from gateway.members.credentials import (
    ClaimFailed,
    EmailTaken,
    SignInFailed,
    SignInLimits,
    sign_in_limits,
)
from gateway.redis.limiter import RedisRateLimiter
from tests.support import harness, servers

PASSWORD = "correct horse battery"


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return harness.make_gateway(tmp_path)


class FrozenTime:
    """The limiters' clock in these tests: argon2 takes real time, the limits must not see it."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def time() -> FrozenTime:
    return FrozenTime()


@pytest.fixture
def limits(time: FrozenTime) -> SignInLimits:
    """The production limits on this run's limiter backend (Redis or in process), on a
    frozen clock."""
    def make(name: str, per_minute: int, burst: int) -> RateLimiter:
        if harness.USE_REDIS:
            client = redis.Redis.from_url(servers.redis().url)
            prefix = f"{harness.redis_settings()['redis_prefix']}{name}:"
            return RedisRateLimiter(client, per_minute, burst=burst, prefix=prefix, now=time)
        return InProcessRateLimiter(per_minute, burst=burst, now=time)

    return sign_in_limits(make)


def rows(gateway: Gateway) -> dict[str, int]:
    with gateway.services.engine.connect() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (t.members, t.member_credentials, t.accounts)}


def test_sign_up_normalises_and_refuses_with_the_field(gateway: Gateway) -> None:
    engine, clock = gateway.services.engine, gateway.services.clock
    made = enrolment.sign_up(engine, clock, "  Ada@Example.COM ", PASSWORD, language="fr-BE")
    with engine.connect() as conn:
        email, stored = conn.execute(select(t.member_credentials.c.email,
                                            t.member_credentials.c.password_hash)).one()
        language = conn.execute(select(t.members.c.language)
                                .where(t.members.c.id == made.member_id)).scalar_one()
    assert (email, language) == ("ada@example.com", "fr-BE")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    before = rows(gateway)
    for email_, password, language_, field in (
            ("ada@", PASSWORD, None, "email"), ("b@example.com", "x" * 9, None, "password"),
            ("b@example.com", "x" * 1025, None, "password"),
            ("b@example.com", PASSWORD, "not a tag", "language")):
        with pytest.raises(InvalidInput) as error:
            enrolment.sign_up(engine, clock, email_, password, language=language_)
        assert error.value.field == field
    with pytest.raises(EmailTaken) as taken:
        enrolment.sign_up(engine, clock, "ADA@example.com", PASSWORD)
    assert taken.value.field == "email"
    assert rows(gateway) == before


def test_sign_in_backs_off_per_account(gateway: Gateway, limits: SignInLimits,
                                       time: FrozenTime) -> None:
    engine, clock = gateway.services.engine, gateway.services.clock
    made = enrolment.sign_up(engine, clock, "ada@example.com", PASSWORD)
    assert credentials.sign_in(engine, limits, "ada@example.com", PASSWORD,
                               address="198.51.100.1") == made.member_id
    for attempt in range(4):  # the burst is 5 tries, the successful one included
        with pytest.raises(SignInFailed):
            credentials.sign_in(engine, limits, "ada@example.com", f"wrong-{attempt}-xxxx",
                                address=f"198.51.100.{attempt + 2}")
    with pytest.raises(RateLimited) as limited:  # even the right password, from elsewhere
        credentials.sign_in(engine, limits, " ADA@example.com", PASSWORD, address="192.0.2.9")
    assert limited.value.retry_after_s == 30
    time.now += 29
    with pytest.raises(RateLimited) as limited:
        credentials.sign_in(engine, limits, "ada@example.com", PASSWORD, address="192.0.2.9")
    assert limited.value.retry_after_s == 1
    time.now += 1  # one more try per 30 s from now on
    assert credentials.sign_in(engine, limits, "ada@example.com", PASSWORD,
                               address="192.0.2.9") == made.member_id
    with pytest.raises(RateLimited) as limited:
        credentials.sign_in(engine, limits, "ada@example.com", PASSWORD, address="192.0.2.9")
    assert limited.value.retry_after_s == 30
    # Another account from the same addresses is not affected.
    other = enrolment.sign_up(engine, clock, "bob@example.com", PASSWORD)
    assert credentials.sign_in(engine, limits, "bob@example.com", PASSWORD,
                               address="198.51.100.2") == other.member_id


def test_sign_in_limits_per_address_and_unknown_emails(gateway: Gateway,
                                                       limits: SignInLimits) -> None:
    engine = gateway.services.engine
    for n in range(20):
        with pytest.raises(SignInFailed) as failed:
            credentials.sign_in(engine, limits, f"nobody{n}@example.com", PASSWORD,
                                address="203.0.113.5")
        assert failed.value.message == "the email or password is wrong"
    with pytest.raises(RateLimited) as limited:
        credentials.sign_in(engine, limits, "somebody@example.com", PASSWORD,
                            address="203.0.113.5")
    assert limited.value.retry_after_s == 2
    with pytest.raises(SignInFailed):  # another address is still heard
        credentials.sign_in(engine, limits, "somebody@example.com", PASSWORD,
                            address="203.0.113.6")


def test_claim_limits_wrong_codes_per_card(gateway: Gateway, limits: SignInLimits) -> None:
    services = gateway.services
    enrolled = enrol_customer(services.engine, services.clock, "grocery", "c-1")
    assert enrolled.card_number is not None and enrolled.activation_code is not None
    before = rows(gateway)
    for n in range(5):
        with pytest.raises(ClaimFailed) as failed:
            credentials.claim(services.engine, services.clock, limits, enrolled.card_number,
                              "WRONGCODE" + "ACDEFGHJ"[n], "ada@example.com", PASSWORD,
                              address=f"198.51.100.{n}")
        assert failed.value.field == "activationCode"
    with pytest.raises(RateLimited):
        credentials.claim(services.engine, services.clock, limits, enrolled.card_number,
                          enrolled.activation_code, "ada@example.com", PASSWORD,
                          address="192.0.2.1")
    with pytest.raises(InvalidInput) as bad_card:
        credentials.claim(services.engine, services.clock, limits, "1234", "x",
                          "ada@example.com", PASSWORD, address=None)
    assert bad_card.value.field == "cardNumber"
    assert rows(gateway) == before
    with services.engine.connect() as conn:
        claimed = conn.execute(select(t.members.c.claimed_at, t.members.c.activation_code_hash)
                               .where(t.members.c.id == enrolled.member_id)).one()
    assert claimed.claimed_at is None and claimed.activation_code_hash is not None


def test_the_app_wires_the_limits_on_its_backend(gateway: Gateway) -> None:
    """Through the composition root's ``make_limiter`` (real time): the sixth quick try of an
    account waits, at most the 30 s interval."""
    engine, clock = gateway.services.engine, gateway.services.clock
    limits = sign_in_limits(gateway.backends.make_limiter)
    enrolment.sign_up(engine, clock, "ada@example.com", PASSWORD)
    for _ in range(5):
        with pytest.raises(SignInFailed):
            credentials.sign_in(engine, limits, "ada@example.com", "wrong password",
                                address="198.51.100.1")
    with pytest.raises(RateLimited) as limited:
        credentials.sign_in(engine, limits, "ada@example.com", PASSWORD, address="198.51.100.1")
    assert 1 <= limited.value.retry_after_s <= 30


def test_demo_member_and_app_client_are_idempotent(gateway: Gateway) -> None:
    engine, clock = gateway.services.engine, gateway.services.clock
    first = enrolment.ensure_demo_member(engine, clock, "demo@example.com", PASSWORD)
    again = enrolment.ensure_demo_member(engine, clock, "demo@example.com", PASSWORD)
    assert first == again
    before = rows(gateway)
    made = ensure_demo_client(engine, None, "app-demo", "", ["member"], kind="app",
                              redirect_uris=["http://127.0.0.1:8765/callback"])
    same = ensure_demo_client(engine, None, "app-demo", "", ["member"], kind="app",
                              redirect_uris=["http://127.0.0.1:8765/callback"])
    assert made == same
    assert (made.kind, made.public, made.secret_hash, made.redirect_uris) == (
        "app", True, "", ("http://127.0.0.1:8765/callback",))
    assert rows(gateway) == before
