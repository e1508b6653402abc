"""A member who forgot their password gets a new one through their email (decision 036).

``admit_request`` checks and counts the request; ``create_link`` then (after the response)
makes a link for the account that signs in with the email, if there is one:
32 random bytes (URL-safe base64) in the link, only their SHA-256 in ``password_resets``, valid
for :data:`RESET_TTL`. ``reset_password`` takes the token and a new password. The token must
be known, unused, unexpired, and its member still active. It then, in one transaction:
- sets the new password hash;
- uses the token (a conditional UPDATE, so two tabs cannot both use it);
- retires the member's other open links;
- revokes every portal session of the member (whoever knew the old password is signed out);
- cuts off the member's app tokens issued until now (:func:`cut_off_app_tokens`): the caller
  then tells its auth feed (``AuthFeed.changed``) so this process refuses them at once.

Nothing tells an asker whether an email has an account: the caller answers the same page
either way and sends the email off the request (``gateway.portal.pages``). Requests are rate
limited per email and per source address on the sign-in limiters (:class:`SignInLimits`),
and so are the tries of a token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from gateway.core.clock import Clock
from gateway.core.errors import Rejected
from gateway.db.tables import member_credentials, member_sessions, members, password_resets
from gateway.db.uow import UnitOfWork
from gateway.members.credentials import (
    SignInLimits,
    check_password,
    hash_password,
    normalise_email,
)
from gateway.members.repository import MemberRepository
from gateway.members.sessions import cut_off_app_tokens, token_hash

RESET_TTL = timedelta(minutes=30)
MAX_TOKEN = 100  # a longer value is not one of ours: refused without a lookup


class ResetLinkInvalid(Rejected):
    """The link is unknown, used, expired, or its account is closed."""


@dataclass(frozen=True, slots=True)
class ResetLink:
    """A link to email: to whom, and the token (shown nowhere else)."""

    member_id: str
    email: str
    token: str


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    member_id: str
    email: str


# Each by its primary key or unique index.
_ACCOUNT = (select(member_credentials.c.member_id, members.c.status)
            .join(members, members.c.id == member_credentials.c.member_id)
            .where(member_credentials.c.email == bindparam("email")))
_TOKEN = (select(password_resets.c.member_id, password_resets.c.expires_at,
                 password_resets.c.used_at, members.c.status)
          .join(members, members.c.id == password_resets.c.member_id)
          .where(password_resets.c.token_hash == bindparam("token_hash")))
_USE = (update(password_resets)
        .where(password_resets.c.token_hash == bindparam("hashed"),
               password_resets.c.used_at.is_(None))
        .values(used_at=bindparam("now", type_=password_resets.c.used_at.type)))
_RETIRE_OTHERS = (update(password_resets)  # ix_password_resets_member
                  .where(password_resets.c.member_id == bindparam("member"),
                         password_resets.c.used_at.is_(None))
                  .values(used_at=bindparam("now", type_=password_resets.c.used_at.type)))
_SET_PASSWORD = (update(member_credentials)  # primary key
                 .where(member_credentials.c.member_id == bindparam("member"))
                 .values(password_hash=bindparam("encoded"),
                         updated_at=bindparam("now", type_=member_credentials.c.updated_at.type)))
_EMAIL_OF = select(member_credentials.c.email).where(  # primary key
    member_credentials.c.member_id == bindparam("member"))
_SIGN_OUT_EVERYWHERE = (update(member_sessions)  # ix_member_sessions_member
                        .where(member_sessions.c.member_id == bindparam("member"),
                               member_sessions.c.revoked_at.is_(None))
                        .values(revoked_at=bindparam(
                            "now", type_=member_sessions.c.revoked_at.type)))


def admit_request(limits: SignInLimits, email: str, *, address: str | None) -> str:
    """The asker's part, on the request: the email checked (``InvalidInput``) and the request
    counted on the limits (``RateLimited``). Returns the normalised email. Nothing is read:
    the answer takes the same time whether the email has an account or not."""
    normalised = normalise_email(email)
    limits.check(f"reset:{normalised}", address)
    return normalised


def create_link(engine: Engine, clock: Clock, email: str) -> ResetLink | None:
    """A reset link for the active account that signs in with ``email`` (normalised); None
    when there is none. Run after the response (``gateway.portal.pages``)."""
    token = secrets.token_urlsafe(32)
    with UnitOfWork(engine) as uow:
        account = uow.conn.execute(_ACCOUNT, {"email": email}).first()
        if account is None or account.status != "active":
            return None
        now = clock.now()
        uow.conn.execute(insert(password_resets), {
            "token_hash": token_hash(token), "member_id": account.member_id, "created_at": now,
            "expires_at": now + RESET_TTL, "used_at": None})
        uow.commit()
    return ResetLink(str(account.member_id), email, token)


def check_link(engine: Engine, clock: Clock, token: str) -> str:
    """The member a usable link is for; :class:`ResetLinkInvalid` otherwise (the page that
    asks for the new password checks first, so a dead link says so before any typing)."""
    with engine.connect() as conn:
        return _usable(conn, clock, token)


def reset_password(engine: Engine, clock: Clock, limits: SignInLimits, token: str,
                   new_password: str, *, address: str | None) -> PasswordChanged:
    """Set the new password with a usable link; returns the member and the email the account
    signs in with (to tell them it changed)."""
    check_password(new_password)
    # Per link and per source address: guessing a token (256 bits) is hopeless, the address
    # limit stops anyone trying at volume.
    limits.check(f"reset-token:{token_hash(token)}", address)
    encoded = hash_password(new_password)
    with UnitOfWork(engine) as uow:
        member_id = _usable(uow.conn, clock, token)
        now = clock.now()
        if uow.conn.execute(_USE, {"hashed": token_hash(token), "now": now}).rowcount != 1:
            raise ResetLinkInvalid(_DEAD, field="token")  # used by a concurrent request
        params = {"member": member_id, "now": now}
        uow.conn.execute(_RETIRE_OTHERS, params)
        uow.conn.execute(_SET_PASSWORD, {**params, "encoded": encoded})
        uow.conn.execute(_SIGN_OUT_EVERYWHERE, params)
        # The member's row locked, then the cut-off's clock read (PostgreSQL): a code exchange
        # holds that lock while it checks the cut-off (gateway.auth.codes), so a token it
        # answered is older than the cut-off, and one that waits sees the committed cut-off.
        # Last, as an erasure takes it last: no lock cycle with it.
        MemberRepository(uow.conn).lock(member_id)
        cut_off_app_tokens(uow.conn, member_id, clock.now())
        email = uow.conn.execute(_EMAIL_OF, {"member": member_id}).scalar_one()
        uow.commit()
    return PasswordChanged(member_id, str(email))


_DEAD = "this reset link is not valid any more: ask for a new one"


def _usable(conn: Connection, clock: Clock, token: str) -> str:
    if not token or len(token) > MAX_TOKEN:
        raise ResetLinkInvalid(_DEAD, field="token")
    row = conn.execute(_TOKEN, {"token_hash": token_hash(token)}).first()
    if (row is None or row.used_at is not None or row.status != "active"
            or clock.now() >= row.expires_at):
        raise ResetLinkInvalid(_DEAD, field="token")
    return str(row.member_id)
