"""Who a member is, as the outside world can see it: the coalition card number, one-time codes,
and the pairwise reference each partner gets instead of the internal member id (DESIGN §6).

- **Card number**: 16 digits, the coalition prefix ``9``, 14 random digits and a Luhn check
  digit (ISO/IEC 7812-1), unique (a UNIQUE index) and never reused (erasure keeps the number).
- **One-time codes** (activation codes printed at the till, link codes made by the member):
  drawn from an alphabet without look-alike characters (no 0/O, 1/I/L, 5/S, 8/B), compared
  after normalising case, spaces and dashes; only their SHA-256 is stored.
- **Pairwise member reference** (like OpenID Connect pairwise subject identifiers): an HMAC of
  (partner, member) under a server secret kept in the database, so the same person has a
  different, stable reference at every partner and one partner's knowledge is useless at another.

Pure functions first; :class:`IdentityRepository` holds the SQL. Nothing here commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.core.ids import new_id
from gateway.db.tables import members, server_secrets

CARD_PREFIX = "9"
CARD_LENGTH = 16
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679"  # no 0 O 1 I L 5 S 8 B Z
ACTIVATION_CODE_LENGTH = 10
LINK_CODE_LENGTH = 8
PAIRWISE_SECRET = "pairwise-member-reference"


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:  # these are doubled once the check digit is appended
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def is_card_number(text: str) -> bool:
    """16 digits with a valid Luhn check digit (spaces allowed between groups)."""
    number = text.replace(" ", "")
    return (len(number) == CARD_LENGTH and number.isascii() and number.isdigit()
            and luhn_check_digit(number[:-1]) == number[-1])


def normalise_card_number(text: str) -> str:
    return text.replace(" ", "").replace("-", "")


def new_card_number() -> str:
    body = CARD_PREFIX + "".join(secrets.choice("0123456789") for _ in range(CARD_LENGTH - 2))
    return body + luhn_check_digit(body)


def new_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalise_code(text: str) -> str:
    return "".join(text.split()).replace("-", "").upper()


def hash_code(code: str) -> str:
    """What is stored of a one-time code: SHA-256 of its normalised form (the codes are random
    and short-lived, and every guess is rate limited, so a fast hash is enough)."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def member_reference(secret: bytes, partner_id: str, member_id: str) -> str:
    """This partner's own stable reference for the member: ``mr_`` and 26 base32 characters."""
    digest = hmac.new(secret, f"{partner_id}\x00{member_id}".encode(), hashlib.sha256).digest()
    return "mr_" + base64.b32encode(digest).decode().lower()[:26]


@dataclass(frozen=True, slots=True)
class NewMember:
    member_id: str
    card_number: str
    activation_code: str | None  # shown once (printed on the receipt); None when not asked


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: str
    card_number: str | None
    status: str
    merged_into: str | None
    claimed_at: datetime | None
    erased_at: datetime | None


class IdentityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create_member(self, now: datetime, *, with_activation: bool) -> NewMember:
        """A new member with a fresh card number (and an activation code for a till
        enrolment). A card number collision (1 in 10^14 per pair) draws another."""
        member_id = new_id("mem")
        code = new_code(ACTIVATION_CODE_LENGTH) if with_activation else None
        for _ in range(5):
            card = new_card_number()
            try:
                with self.conn.begin_nested():
                    self.conn.execute(insert(members), {
                        "id": member_id, "created_at": now, "card_number": card,
                        "status": "active",
                        "activation_code_hash": hash_code(code) if code else None,
                        "claimed_at": None if with_activation else now,
                    })
            except IntegrityError:
                continue
            return NewMember(member_id, card, code)
        raise RuntimeError("could not draw an unused card number")

    def member(self, member_id: str) -> MemberRow | None:
        row = self.conn.execute(select(*_MEMBER_COLUMNS).where(members.c.id == member_id)).first()
        return None if row is None else MemberRow(*row)

    def member_by_card(self, card_number: str) -> MemberRow | None:
        number = normalise_card_number(card_number)
        row = self.conn.execute(
            select(*_MEMBER_COLUMNS).where(members.c.card_number == number)).first()
        return None if row is None else MemberRow(*row)

    def activation_matches(self, member_id: str, code: str) -> bool:
        stored = self.conn.execute(
            select(members.c.activation_code_hash).where(members.c.id == member_id)
        ).scalar_one_or_none()
        return stored is not None and hmac.compare_digest(stored, hash_code(code))

    def secret(self, name: str, now: datetime) -> bytes:
        """A server secret, made on first use; every worker and host reads the same one."""
        value = base64.b64encode(secrets.token_bytes(32)).decode()
        row = {"name": name, "value": value, "created_at": now}
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        self.conn.execute(dialect.insert(server_secrets).values(**row)
                          .on_conflict_do_nothing(index_elements=["name"]))
        stored = self.conn.execute(
            select(server_secrets.c.value).where(server_secrets.c.name == name)).scalar_one()
        return base64.b64decode(stored)


_MEMBER_COLUMNS = (members.c.id, members.c.card_number, members.c.status, members.c.merged_into,
                   members.c.claimed_at, members.c.erased_at)
