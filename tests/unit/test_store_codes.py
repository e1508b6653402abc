"""Store codes without a database: the digits' check digit, the QR text's shape and signature."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.members.codes import (
    STORE_QR_PREFIX,
    PresentedStoreCode,
    group_digits,
    looks_like_link_code,
    new_store_digits,
    parse_store_code,
    store_qr_text,
    store_tag,
)
from gateway.members.identity import luhn_check_digit

SECRET = b"k" * 32
AT = datetime(2026, 11, 23, 10, 1, tzinfo=UTC)
DIGITS = "12345678901" + luhn_check_digit("12345678901")


def test_digits_are_twelve_with_a_luhn_check_digit() -> None:
    for _ in range(200):
        digits = new_store_digits()
        assert len(digits) == 12 and digits.isdigit()
        assert luhn_check_digit(digits[:-1]) == digits[-1]
    assert group_digits(DIGITS) == f"{DIGITS[:4]} {DIGITS[4:8]} {DIGITS[8:]}"


def test_typed_digits_parse_with_spaces_and_dashes_and_typos_do_not() -> None:
    assert parse_store_code(group_digits(DIGITS)) == PresentedStoreCode(DIGITS)
    assert parse_store_code(f"{DIGITS[:6]}-{DIGITS[6:]}") == PresentedStoreCode(DIGITS)
    typo = DIGITS[:3] + str((int(DIGITS[3]) + 1) % 10) + DIGITS[4:]
    assert parse_store_code(typo) is None
    assert parse_store_code(DIGITS[:-1]) is None
    assert parse_store_code("") is None
    assert parse_store_code("٣" * 12) is None  # non-ASCII digits


def test_qr_text_carries_digits_expiry_and_a_tag_bound_to_the_member() -> None:
    text = store_qr_text(SECRET, DIGITS, AT, "mem_A")
    unix = int(AT.timestamp())
    tag = store_tag(SECRET, DIGITS, unix, "mem_A")
    assert text == f"{STORE_QR_PREFIX}.{DIGITS}.{unix}.{tag}"
    assert len(tag) == 26
    assert parse_store_code(text) == PresentedStoreCode(DIGITS, unix, tag)
    assert parse_store_code(text).scanned  # type: ignore[union-attr]
    # Another member, another expiry or another secret: another tag.
    assert store_tag(SECRET, DIGITS, unix, "mem_B") != tag
    assert store_tag(SECRET, DIGITS, unix + 1, "mem_A") != tag
    assert store_tag(b"x" * 32, DIGITS, unix, "mem_A") != tag
    assert parse_store_code(f"{STORE_QR_PREFIX}.{DIGITS}.soon.{tag}") is None
    assert parse_store_code(f"{STORE_QR_PREFIX}.{DIGITS}.{unix}") is None


def test_link_code_shape() -> None:
    assert looks_like_link_code("acde-fghj")
    assert looks_like_link_code("ACDE FGHJ")
    assert not looks_like_link_code("ACDEFGH")  # 7
    assert not looks_like_link_code("ACDEFGH0")  # 0 is not in the alphabet
    assert not looks_like_link_code("mem_0000")
