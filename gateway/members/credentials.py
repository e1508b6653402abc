"""How a member proves who they are to the portal and the coalition's apps: sign up, sign in,
and claim a card enrolled at a till (DESIGN §6).

- Passwords are hashed with argon2id (argon2-cffi's defaults: RFC 9106's second recommended
  profile, 64 MiB, 3 passes); the hash string carries its parameters, so they can be raised later.
- Emails are normalised (stripped, lower-cased) before they are stored or looked up.
- Every guess is rate limited per account and per source address (``SignInLimits``), on the
  project's limiter backends (Redis in production): GCRA with a small burst, so the first few
  mistakes cost nothing and repeated failures then wait ever longer between tries (back-off,
  up to one try per interval). A wrong activation code is limited the same way, per card.
- An unknown email costs the same as a wrong password: a dummy hash is verified, so response
  time does not tell which emails have accounts.

These functions block (argon2 takes ~50 ms of CPU, plus the database): callers on an event loop
run them in a worker thread. Nothing here knows HTTP."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.core.clock import Clock
from gateway.core.errors import Conflict, InvalidInput, RateLimited, Rejected
from gateway.db.tables import member_credentials, members
from gateway.db.uow import UnitOfWork
from gateway.limits import RateLimiter
from gateway.members.identity import IdentityRepository, is_card_number, normalise_card_number

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes any length; a cap keeps a request from costing more
MAX_EMAIL = 254  # RFC 5321 path limit
LANGUAGES = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")  # a BCP 47 tag's common shape
# No control characters: PostgreSQL refuses a NUL in a text parameter (a 500, not a typed
# error), and none belongs in an address.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """The unknown-email decoy, made on first use (an argon2 hash costs 64 MiB and tens of
    milliseconds: not at import, in every worker and CLI run that never signs anyone in)."""
    return _HASHER.hash("not a password anyone has: the unknown-email decoy")


class EmailTaken(Conflict):
    """Another account already signs in with this email."""


class SignInFailed(Rejected):
    """Wrong email or password; deliberately not saying which."""


class ClaimFailed(Rejected):
    """The card number and activation code do not match an unclaimed card."""


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Limiters for guesses. ``account``: keyed by email or card number; ``address``: by the
    client's source address. Built by the composition root from the project's backends."""

    account: RateLimiter
    address: RateLimiter

    def check(self, account_key: str, address: str | None) -> None:
        checks = [(self.account, account_key)]
        if address is not None:
            checks.append((self.address, address))
        for limiter, key in checks:
            decision = limiter.hit(key)
            if not decision.allowed:
                raise RateLimited(decision.retry_after_s)


# Per account (email or card): 5 tries at once, then one every 30 s; per source address: 20 at
# once, then one every 2 s (a shared NAT can hold many members). See
# docs/decisions/007-member-sign-in-and-consent.md.
ACCOUNT_PER_MINUTE, ACCOUNT_BURST = 2, 5
ADDRESS_PER_MINUTE, ADDRESS_BURST = 30, 20


def sign_in_limits(make: Callable[[str, int, int], RateLimiter]) -> SignInLimits:
    """The limits on the project's limiter backend: ``make(name, per_minute, burst)``."""
    return SignInLimits(account=make("signin-account", ACCOUNT_PER_MINUTE, ACCOUNT_BURST),
                        address=make("signin-address", ADDRESS_PER_MINUTE, ADDRESS_BURST))


@dataclass(frozen=True, slots=True)
class SignedUp:
    member_id: str
    card_number: str


def normalise_email(text: str) -> str:
    email = text.strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise InvalidInput("enter an email address like name@example.com", field="email")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password needs at least {MIN_PASSWORD} characters",
                           field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password may have at most {MAX_PASSWORD} characters",
                           field="password")


# At most this many argon2 computations at once per process; the rest wait their turn in
# their worker thread. argon2 releases the GIL, so it never stalls the event loop, but twenty
# concurrent sign-ins would otherwise take every core (and 64 MiB each) from the requests
# around them; one at a time leaves the other core to them (benchmarks/signin.py).
HASH_CONCURRENCY = 1
_HASHING = threading.BoundedSemaphore(HASH_CONCURRENCY)


def hash_password(password: str) -> str:
    with _HASHING:
        return _HASHER.hash(password)


def password_matches(encoded: str, password: str) -> bool:
    try:
        with _HASHING:
            return _HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class SignUpForm:
    """A checked sign-up: the normalised email, the password's argon2 hash, the profile."""

    email: str
    encoded: str
    birth_date: date | None
    language: str | None


def check_sign_up(clock: Clock, email: str, password: str, *, birth_date: date | None = None,
                  language: str | None = None) -> SignUpForm:
    """Check a sign-up and hash its password: before the transaction, ~50 ms holding no lock."""
    address = normalise_email(email)
    check_password(password)
    if language is not None and not LANGUAGES.match(language):
        raise InvalidInput("language must be a language tag such as en or fr-BE", field="language")
    if birth_date is not None and birth_date > clock.now().date():
        raise InvalidInput("the birth date is in the future", field="birthDate")
    return SignUpForm(address, hash_password(password), birth_date, language)


def sign_up_in(conn: Connection, now: datetime, form: SignUpForm) -> SignedUp:
    """The identity half of sign-up, inside the caller's write transaction: a new member (card
    number, no activation code) with these credentials. :func:`gateway.ledger.enrolment.sign_up`
    opens the member's ledger accounts in the same transaction and commits."""
    if _credential(conn, form.email) is not None:
        raise EmailTaken("an account with this email exists; sign in instead", field="email")
    new = IdentityRepository(conn).create_member(now, with_activation=False)
    conn.execute(update(members).where(members.c.id == new.member_id)
                 .values(birth_date=form.birth_date, language=form.language))
    _insert_credential(conn, new.member_id, form.email, form.encoded, now)
    return SignedUp(new.member_id, new.card_number)


def sign_in(engine: Engine, limits: SignInLimits, email: str, password: str, *,
            address: str | None) -> str:
    """The member id of these credentials; :class:`SignInFailed` otherwise (the same message,
    and the same argon2 work, for an unknown email as for a wrong password)."""
    normalised = email.strip().lower()
    limits.check(f"signin:{normalised}", address)
    # A NUL never matches an account, and PostgreSQL refuses it in a text parameter (a 500).
    if not normalised or "\x00" in normalised or len(password) > MAX_PASSWORD:
        password_matches(_dummy_hash(), password[:MAX_PASSWORD])
        raise SignInFailed("the email or password is wrong", field="password")
    with engine.connect() as conn:
        found = _credential(conn, normalised)
        status = None if found is None else conn.execute(
            select(members.c.status).where(members.c.id == found[0])).scalar_one()
    if found is None:
        password_matches(_dummy_hash(), password)
        raise SignInFailed("the email or password is wrong", field="password")
    member_id, encoded = found
    if not password_matches(encoded, password) or status != "active":
        raise SignInFailed("the email or password is wrong", field="password")
    return member_id


def claim(engine: Engine, clock: Clock, limits: SignInLimits, card_number: str,
          activation_code: str, email: str, password: str, *, address: str | None) -> str:
    """Take over a card enrolled at a till: the receipt's activation code proves possession.
    The code is cleared and ``claimed_at`` set; the member id is returned."""
    card = normalise_card_number(card_number)
    if not is_card_number(card):
        raise InvalidInput("enter the 16 digits printed on the card", field="cardNumber")
    normalised = normalise_email(email)
    check_password(password)
    limits.check(f"claim:{card}", address)
    encoded = hash_password(password)
    with UnitOfWork(engine) as uow:
        identity, now = IdentityRepository(uow.conn), clock.now()
        member = identity.member_by_card(card)
        if (member is None or member.claimed_at is not None or member.status != "active"
                or not identity.activation_matches(member.id, activation_code)):
            raise ClaimFailed("the card number and activation code do not match an unclaimed "
                              "card", field="activationCode")
        if _credential(uow.conn, normalised) is not None:
            raise EmailTaken("an account with this email exists; sign in instead", field="email")
        uow.conn.execute(update(members).where(members.c.id == member.id)
                         .values(activation_code_hash=None, claimed_at=now))
        _insert_credential(uow.conn, member.id, normalised, encoded, now)
        uow.commit()
    return member.id


def _credential(conn: Connection, email: str) -> tuple[str, str] | None:
    row = conn.execute(select(member_credentials.c.member_id, member_credentials.c.password_hash)
                       .where(member_credentials.c.email == email)).first()
    return None if row is None else (str(row[0]), str(row[1]))


def _insert_credential(conn: Connection, member_id: str, email: str, encoded: str,
                       now: datetime) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(member_credentials), {
                "member_id": member_id, "email": email, "password_hash": encoded,
                "created_at": now, "updated_at": now})
    except IntegrityError as error:  # a concurrent sign-up took the email first
        raise EmailTaken("an account with this email exists; sign in instead",
                         field="email") from error


def card_of_email(engine: Engine, email: str) -> str | None:
    """The card number of the member who signs in with this (normalised) email, if any."""
    with engine.connect() as conn:
        found = _credential(conn, email)
        if found is None:
            return None
        card = conn.execute(select(members.c.card_number)
                            .where(members.c.id == found[0])).scalar_one()
        return str(card)
