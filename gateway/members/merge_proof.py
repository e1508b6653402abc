"""How a member proves they control a second account before merging it into their own (issue
10): the second account's card number with its one-time activation code (a card enrolled at a
till, not yet claimed), or its sign-in (email + password).

Both are guesses an attacker could repeat, so both are budgeted before anything is checked:
card + code tries per member and per source address (``CodeGuesses.merge_attempt``, on the
project's limiter backend like link codes); email + password exactly as sign-in is (the same
``SignInLimits`` the portal spends, so a second door adds no budget). A wrong card, a wrong
code, an unknown email and a wrong password all get one answer, ``NotFound`` on the field the
proof started with, so nothing can be probed alone. These functions block (argon2, the
database): callers on an event loop run them in a worker thread."""

from __future__ import annotations

from sqlalchemy import Engine

from gateway.core.errors import InvalidInput, NotFound
from gateway.db.uow import UnitOfWork
from gateway.members.credentials import SignInFailed, SignInLimits, sign_in
from gateway.members.guesses import CodeGuesses
from gateway.members.identity import IdentityRepository, normalise_card_number


def prove_second_account(engine: Engine, guesses: CodeGuesses, sign_in_limits: SignInLimits,
                         member_id: str, *, source: str | None, card_number: str | None,
                         activation_code: str | None, email: str | None,
                         password: str | None) -> str:
    """The member id of the account proven; exactly one proof: card number + activation code,
    or email + password. Errors: INVALID_INPUT (no proof, both, or half of one), RATE_LIMITED,
    NOT_FOUND (the proof does not hold)."""
    by_card = card_number is not None or activation_code is not None
    by_sign_in = email is not None or password is not None
    if by_card == by_sign_in:
        raise InvalidInput("prove the other account with its card number and activation code, "
                           "or with its email and password", field="cardNumber")
    if by_card:
        if not card_number or not activation_code:
            raise InvalidInput("give both the card number and the activation code",
                               field="activationCode" if card_number else "cardNumber")
        guesses.merge_attempt(member_id, source)
        return _by_card(engine, card_number, activation_code)
    if not email or not password:
        raise InvalidInput("give both the email and the password",
                           field="password" if email else "email")
    try:
        return sign_in(engine, sign_in_limits, email, password, address=source)
    except SignInFailed:
        raise NotFound("no account with this email and password", field="email") from None


def _by_card(engine: Engine, card_number: str, activation_code: str) -> str:
    with UnitOfWork(engine, write=False) as uow:
        identity = IdentityRepository(uow.conn)
        found = identity.member_by_card(normalise_card_number(card_number))
        if found is None or not identity.activation_matches(found.id, activation_code):
            raise NotFound("no account with this card number and activation code",
                           field="cardNumber")
        return found.id
