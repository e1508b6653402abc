"""The member's consent, as codes a partner presents: one-time link codes and rotating store
codes (DESIGN §6, docs/decisions/006-store-codes.md).

- **Link code**: 8 characters from :data:`identity.CODE_ALPHABET`, made by the member, valid 10
  minutes, single use. Only its SHA-256 is stored (``link_codes``).
- **Store code**: what the member's app shows at a till, valid about a minute. Digits for manual
  entry (11 random digits and a Luhn check digit, shown as three groups of four) and a QR text
  that adds the expiry and an HMAC over (digits, expiry, member) under a server secret. Only the
  SHA-256 of the digits is stored (``store_codes``). The first partner that presents a code binds
  it; other partners find nothing. It identifies the member for any number of earns there, and
  gives one consent use (a spend, or a link) during its minute.

A wrong, expired, used or someone else's code is, to the caller, one answer: ``None`` here,
``UnknownMember`` in the services. Pure functions first; :class:`CodeRepository` holds the SQL.
Nothing here commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.db.tables import link_codes, store_codes
from gateway.members.identity import (
    CODE_ALPHABET,
    LINK_CODE_LENGTH,
    hash_code,
    luhn_check_digit,
    new_code,
    normalise_code,
)

LINK_CODE_TTL = timedelta(minutes=10)
STORE_CODE_TTL = timedelta(seconds=60)
STORE_DIGITS = 12
STORE_QR_PREFIX = "CGSC1"
STORE_CODE_SECRET = "store-code-signing"
_TAG_LENGTH = 26  # base32 characters: 130 bits of the HMAC-SHA256


@dataclass(frozen=True, slots=True)
class LinkCode:
    code: str  # shown once to the member; only its hash is kept
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoreCode:
    digits: str  # "1234 5678 9012": for typing at a till
    qr_text: str  # what the QR encodes (rendered as SVG by the portal and app)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PresentedStoreCode:
    """A store code as the till sent it: the digits, and the QR's expiry and tag if scanned."""

    digits: str
    expires_unix: int | None = None
    tag: str | None = None

    @property
    def scanned(self) -> bool:
        return self.tag is not None


# --- pure ---------------------------------------------------------------------------------------
def new_store_digits() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(STORE_DIGITS - 1))
    return body + luhn_check_digit(body)


def group_digits(digits: str) -> str:
    return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


def store_tag(secret: bytes, digits: str, expires_unix: int, member_id: str) -> str:
    message = f"store-code\x00{digits}\x00{expires_unix}\x00{member_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:_TAG_LENGTH]


def store_qr_text(secret: bytes, digits: str, expires_at: datetime, member_id: str) -> str:
    expires_unix = int(expires_at.timestamp())
    return (f"{STORE_QR_PREFIX}.{digits}.{expires_unix}."
            f"{store_tag(secret, digits, expires_unix, member_id)}")


def parse_store_code(text: str) -> PresentedStoreCode | None:
    """The digits or the QR text; None when it cannot be one (a typo the Luhn digit catches, or
    a QR text of another shape)."""
    text = text.strip()
    if text.startswith(STORE_QR_PREFIX + "."):
        parts = text.split(".")
        if len(parts) != 4 or not parts[2].isascii() or not parts[2].isdigit():
            return None
        digits = parts[1]
        presented = PresentedStoreCode(digits, int(parts[2]), parts[3])
    else:
        digits = text.replace(" ", "").replace("-", "")
        presented = PresentedStoreCode(digits)
    if (len(digits) != STORE_DIGITS or not digits.isascii() or not digits.isdigit()
            or luhn_check_digit(digits[:-1]) != digits[-1]):
        return None
    return presented


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def looks_like_link_code(text: str) -> bool:
    code = normalise_code(text)
    return len(code) == LINK_CODE_LENGTH and all(c in CODE_ALPHABET for c in code)


# --- SQL ----------------------------------------------------------------------------------------
class CodeRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create_link_code(self, member_id: str, now: datetime) -> LinkCode:
        """A fresh link code; the member's expired or used codes are deleted first (they can
        never succeed again, and this keeps the table bounded by the live codes)."""
        self.conn.execute(delete(link_codes).where(
            link_codes.c.member_id == member_id,
            (link_codes.c.expires_at <= now) | link_codes.c.used_at.is_not(None)))
        expires_at = now + LINK_CODE_TTL
        for _ in range(5):
            code = new_code(LINK_CODE_LENGTH)
            try:
                with self.conn.begin_nested():
                    self.conn.execute(insert(link_codes), {
                        "code_hash": hash_code(code), "member_id": member_id,
                        "created_at": now, "expires_at": expires_at})
            except IntegrityError:  # the same code, live or not yet deleted: draw another
                continue
            return LinkCode(code, expires_at)
        raise RuntimeError("could not draw an unused link code")

    def use_link_code(self, code: str, partner_id: str, now: datetime) -> str | None:
        """Mark a live, unused code used by this partner; the member it was made by, or None.
        One conditional UPDATE, so two partners racing for one code cannot both win."""
        code_hash = hash_code(code)
        used = self.conn.execute(
            update(link_codes)
            .where(link_codes.c.code_hash == code_hash, link_codes.c.used_at.is_(None),
                   link_codes.c.expires_at > now)
            .values(used_at=now, used_by_partner_id=partner_id)
        ).rowcount
        if not used:
            return None
        return str(self.conn.execute(select(link_codes.c.member_id)
                                     .where(link_codes.c.code_hash == code_hash)).scalar_one())

    def issue_store_code(self, member_id: str, now: datetime, secret: bytes) -> StoreCode:
        self.conn.execute(delete(store_codes).where(store_codes.c.member_id == member_id,
                                                    store_codes.c.expires_at <= now))
        # Whole seconds: the QR carries the expiry as a Unix time and must match the row.
        expires_at = (now + STORE_CODE_TTL).replace(microsecond=0)
        for _ in range(5):
            digits = new_store_digits()
            try:
                with self.conn.begin_nested():
                    self.conn.execute(insert(store_codes), {
                        "digits_hash": _digest(digits), "member_id": member_id,
                        "issued_at": now, "expires_at": expires_at})
            except IntegrityError:
                continue
            return StoreCode(group_digits(digits),
                             store_qr_text(secret, digits, expires_at, member_id), expires_at)
        raise RuntimeError("could not draw unused store code digits")

    def use_store_code(self, presented: PresentedStoreCode, partner_id: str, now: datetime,
                       secret: bytes, *, consent: bool) -> str | None:
        """The member a live store code belongs to, binding it to this partner on first use;
        ``consent``: also take its one consent use (a spend or a link). None for a wrong,
        expired, tampered or someone else's code, or a consent use already taken."""
        if presented.expires_unix is not None and presented.expires_unix <= now.timestamp():
            return None
        code_hash = _digest(presented.digits)
        row = self.conn.execute(
            select(store_codes.c.member_id, store_codes.c.expires_at)
            .where(store_codes.c.digits_hash == code_hash, store_codes.c.expires_at > now)
        ).first()
        if row is None:
            return None
        member_id, expires_at = str(row[0]), row[1].astimezone(UTC)
        if presented.tag is not None:
            expected = store_tag(secret, presented.digits, int(expires_at.timestamp()),
                                 member_id)
            if (presented.expires_unix != int(expires_at.timestamp())
                    or not hmac.compare_digest(expected, presented.tag)):
                return None
        condition = [store_codes.c.digits_hash == code_hash, store_codes.c.expires_at > now,
                     (store_codes.c.partner_id.is_(None))
                     | (store_codes.c.partner_id == partner_id)]
        values: dict[str, object] = {"partner_id": partner_id}
        if consent:
            condition.append(store_codes.c.consented_at.is_(None))
            values["consented_at"] = now
        bound = self.conn.execute(update(store_codes).where(*condition).values(**values))
        return member_id if bound.rowcount else None
