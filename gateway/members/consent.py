"""What a member does to let a partner reach them, and how a partner's code is checked (DESIGN
§6): make a link code, show a store code, close a link. The partner side (link with a code,
identify a member at a till) calls :func:`member_for_link_code` and :func:`member_for_store_code`
inside its own unit of work.

A partner's word alone never reaches a member: every way in here starts from something the
member made and handed over (a link code, a store code), and every wrong, expired, used or
someone else's code gives the same answer, so a partner cannot learn whether a member exists.
The member-side functions are called by the member API and the portal (they take the member id
of a signed-in member; the transport checks who that is)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput, UnknownMember
from gateway.db.uow import UnitOfWork
from gateway.members.codes import (
    STORE_CODE_SECRET,
    CodeRepository,
    LinkCode,
    StoreCode,
    looks_like_link_code,
    parse_store_code,
)
from gateway.members.identity import IdentityRepository
from gateway.members.repository import MemberRepository
from gateway.members.secrets import server_secret

BAD_LINK_CODE = ("this link code is not valid: wrong, expired or already used; ask the member "
                 "for a new one")
BAD_STORE_CODE = ("this store code is not valid: wrong, expired or already used; ask the member "
                  "to show a fresh one")


def create_link_code(engine: Engine, clock: Clock, member_id: str) -> LinkCode:
    """A one-time code (10 minutes) the member gives a partner to link one customer id."""
    with UnitOfWork(engine) as uow:
        _require_active(uow.conn, member_id)
        code = CodeRepository(uow.conn).create_link_code(member_id, clock.now())
        uow.commit()
        return code


def issue_store_code(engine: Engine, clock: Clock, member_id: str) -> StoreCode:
    """A store code (about a minute) for the member's app or portal to show at a till."""
    secret = server_secret(engine, clock, STORE_CODE_SECRET)
    with UnitOfWork(engine) as uow:
        _require_active(uow.conn, member_id)
        code = CodeRepository(uow.conn).issue_store_code(member_id, clock.now(), secret)
        uow.commit()
        return code


def unlink(engine: Engine, clock: Clock, member_id: str, partner_id: str, actor: str) -> bool:
    """Close the member's link at the partner (their points stay). False if none was open."""
    with UnitOfWork(engine) as uow:
        repo = MemberRepository(uow.conn)
        if not repo.lock(member_id):
            return False
        closed = repo.close_link(partner_id, member_id, clock.now(), via="member", actor=actor)
        uow.commit()
        return closed is not None


def _require_active(conn: Connection, member_id: str) -> None:
    row = IdentityRepository(conn).member(member_id)
    if row is None or row.status != "active":
        raise UnknownMember(f"no active coalition member {member_id!r}", field="memberId")


# --- the partner side: inside the caller's unit of work ------------------------------------------
def member_for_link_code(conn: Connection, now: datetime, partner_id: str, code: str) -> str:
    """Use the link code for this partner; the member who made it, or ``UnknownMember``."""
    member_id = None
    if looks_like_link_code(code):
        member_id = CodeRepository(conn).use_link_code(code, partner_id, now)
    if member_id is None or not _active(conn, member_id):
        raise UnknownMember(BAD_LINK_CODE, field="linkCode")
    return member_id


def store_code_secret(engine: Engine, clock: Clock) -> bytes:
    """Read before the unit of work that resolves a store code (see gateway.members.secrets)."""
    return server_secret(engine, clock, STORE_CODE_SECRET)


def check_store_code(text: str) -> None:
    """A store code of the wrong shape (a typo the check digit catches) is bad input."""
    if parse_store_code(text) is None:
        raise InvalidInput("storeCode is neither a store code's 12 digits nor its QR text",
                           field="storeCode")


def is_scanned(text: str) -> bool:
    presented = parse_store_code(text)
    return presented is not None and presented.scanned


def member_for_store_code(conn: Connection, now: datetime, secret: bytes, partner_id: str,
                          text: str, *, consent: bool) -> str:
    """The member behind a live store code at this partner (binding it here on first use);
    ``consent``: a spend or a link, the code's one consent use. Else ``UnknownMember``."""
    presented = parse_store_code(text)
    member_id = None
    if presented is not None:
        member_id = CodeRepository(conn).use_store_code(presented, partner_id, now, secret,
                                                        consent=consent)
    if member_id is None or not _active(conn, member_id):
        raise UnknownMember(BAD_STORE_CODE, field="storeCode")
    return member_id


def _active(conn: Connection, member_id: str) -> bool:
    row = IdentityRepository(conn).member(member_id)
    return row is not None and row.status == "active"
