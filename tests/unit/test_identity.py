"""Card numbers, one-time codes and pairwise references (gateway.members.identity): pure parts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.members import identity


def test_luhn_check_digit_of_a_known_number() -> None:
    # 7992739871 is the textbook example: its check digit is 3.
    assert identity.luhn_check_digit("7992739871") == "3"
    assert identity.is_card_number("4539 1488 0343 6467")  # a valid 16-digit Luhn number
    assert not identity.is_card_number("4539 1488 0343 6468")


@given(st.integers(min_value=0, max_value=15), st.integers(min_value=1, max_value=9))
def test_every_single_digit_error_in_a_new_card_is_caught(position: int, shift: int) -> None:
    card = identity.new_card_number()
    assert len(card) == 16 and card.startswith("9") and identity.is_card_number(card)
    wrong = card[:position] + str((int(card[position]) + shift) % 10) + card[position + 1:]
    assert not identity.is_card_number(wrong)


def test_codes_avoid_look_alike_characters_and_normalise() -> None:
    for ambiguous in "0O1IL5S8BZ":
        assert ambiguous not in identity.CODE_ALPHABET
    code = identity.new_code(identity.LINK_CODE_LENGTH)
    assert len(code) == 8 and set(code) <= set(identity.CODE_ALPHABET)
    spaced = f" {code[:4].lower()}-{code[4:]} "
    assert identity.hash_code(spaced) == identity.hash_code(code)
    assert identity.hash_code(code) != identity.hash_code(code[::-1] + "A")


def test_pairwise_references_differ_per_partner_and_are_stable() -> None:
    secret = b"s" * 32
    at_grocery = identity.member_reference(secret, "grocery", "mem_1")
    assert at_grocery == identity.member_reference(secret, "grocery", "mem_1")
    assert at_grocery != identity.member_reference(secret, "fuel", "mem_1")
    assert at_grocery != identity.member_reference(secret, "grocery", "mem_2")
    assert at_grocery != identity.member_reference(b"t" * 32, "grocery", "mem_1")
    assert at_grocery.startswith("mr_") and len(at_grocery) == 29
    assert "mem_1" not in at_grocery
