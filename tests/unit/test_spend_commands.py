"""RedeemPoints and AuthoriseRedemption share one set of fields (``SpendFields``): the same
request, two commands. Their fingerprints must not move with the model's shape: a replay of a
request stored before compares against the hash stored then."""

from __future__ import annotations

import dataclasses

from gateway.core.money import Money
from gateway.ledger.model import AuthoriseRedemption, RedeemPoints, SpendFields, request_hash

REDEEM = RedeemPoints("grocery", "g-1", 60, Money(100000, "UAH"), "k1", "p-1", "store")
# request_hash of REDEEM before the two commands shared their fields (and of its authorise).
STORED = "3330eef23763c1e9807ab260ae5cbe1ed7dcef18b22d798336e3a0e64b9609b2"


def test_spend_fingerprints_are_unchanged() -> None:
    assert request_hash(REDEEM) == STORED
    assert request_hash(AuthoriseRedemption.of(REDEEM)) == STORED


def test_authorise_of_a_redeem_copies_every_field() -> None:
    request = RedeemPoints("grocery", None, 70, Money(5, "UAH"), "k2", None, "web",
                           card_number="9900", store_code="123456", coupon_codes=("VIP",))
    authorise = AuthoriseRedemption.of(request)
    assert type(authorise) is AuthoriseRedemption
    assert [getattr(authorise, f.name) for f in dataclasses.fields(SpendFields)] == [
        "grocery", None, 70, Money(5, "UAH"), "k2", None, "web", "9900", "123456", ("VIP",)]


def test_a_redeem_with_coupons_has_its_own_fingerprint() -> None:
    with_coupon = dataclasses.replace(REDEEM, coupon_codes=("VIP",))
    assert request_hash(with_coupon) != STORED  # a coupon changes the request
    assert dataclasses.fields(RedeemPoints) == dataclasses.fields(AuthoriseRedemption)
