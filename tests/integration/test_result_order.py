"""The result-code order of ``gateway.ledger.precedence.RESULT_ORDER``, pinned through the real
commands: for each adjacent pair of codes, a request that is wrong in both ways answers the code
that ranks first, and changes nothing. Pairs that no single command can meet (their codes belong
to different commands) are pinned on the order itself, and the test says why."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.errors import DomainError, ErrorCode
from gateway.core.money import Money
from gateway.ledger import holds, service
from gateway.ledger.context import LedgerContext
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import (
    AuthoriseRedemption,
    CaptureRedemption,
    EarnPoints,
    RedeemPoints,
    ReturnPurchase,
)
from gateway.ledger.precedence import RESULT_ORDER, precedence
from gateway.limits import Decision
from gateway.members.guesses import CodeGuesses
from gateway.settings import DEFAULT_CATALOG
from tests.support import harness
from tests.support.harness import NOW, ledger_snapshot, track
from tests.support.members import card_number_of, member_id_of, store_code_for

# A partner whose only rule came into force three days ago and that takes no points.
OUTLET = """id = "outlet"
name = "Outlet"
kind = "merchant"
currency = "UAH"

[[rules]]
version = 1
effective_from = "2026-11-20T00:00:00Z"

[rules.earn]
points = 1
per_amount_minor = 1000
rounding = "floor"
expiry_days = 365

[rules.settlement]
currency = "EUR"
price_per_point_issued_minor = "0.25"
price_per_point_redeemed_minor = "0.22"
fee_share = "0.02"
"""


class Spent:
    """A budget already used up: every hit is refused."""

    def hit(self, key: str, cost: int = 1) -> Decision:
        return Decision(False, 60)


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    catalog = tmp_path / "catalog"
    shutil.copytree(DEFAULT_CATALOG, catalog)
    (catalog / "outlet.toml").write_text(OUTLET)
    gateway = build(harness.test_settings(tmp_path, catalog_dir=catalog), clock=FixedClock(NOW))
    track(gateway.services.engine)
    engine, clock = gateway.services.engine, gateway.services.clock
    enrol_customer(engine, clock, "grocery", "g-1")
    enrol_customer(engine, clock, "outlet", "o-1")
    service.earn_points(gateway.services.ledger, EarnPoints(
        "grocery", "g-1", Money(100_000, "UAH"), "store", "p-1", "seed"))
    return gateway


def answer(gw: Gateway, call: Callable[[], object]) -> str:
    """The code a rejected call answers; asserts it changed nothing."""
    before = ledger_snapshot(gw)
    with pytest.raises(DomainError) as refused:
        call()
    assert ledger_snapshot(gw) == before
    return str(refused.value.code)


def spent_budget(ledger: LedgerContext) -> LedgerContext:
    guesses = CodeGuesses.build()
    return dataclasses.replace(ledger, guesses=dataclasses.replace(guesses, store_digits=Spent()))


UAH = Money(10_000, "UAH")
EUR = Money(10_000, "EUR")


def test_order_lists_each_code_once_and_ranks_by_position() -> None:
    assert len(set(RESULT_ORDER)) == len(RESULT_ORDER)
    assert [precedence(code) for code in RESULT_ORDER] == list(range(len(RESULT_ORDER)))


def test_unknown_customer_with_amount_zero_is_invalid_amount_on_every_command(
        gw: Gateway) -> None:
    """The issue's example: earn answered UNKNOWN_MEMBER, redeem INVALID_AMOUNT."""
    ledger = gw.services.ledger
    assert answer(gw, lambda: service.earn_points(ledger, EarnPoints(
        "grocery", "nobody", Money(0, "UAH"), "store", "p-x", "k1"))) == "INVALID_AMOUNT"
    assert answer(gw, lambda: service.redeem_points(ledger, RedeemPoints(
        "grocery", "nobody", 0, UAH, "k2"))) == "INVALID_AMOUNT"
    assert answer(gw, lambda: holds.authorise_redemption(ledger, AuthoriseRedemption(
        "grocery", "nobody", 0, UAH, "k3"))) == "INVALID_AMOUNT"
    assert answer(gw, lambda: service.return_purchase(ledger, ReturnPurchase(
        "grocery", "no-such-purchase", Money(0, "UAH"), "k4"))) == "INVALID_AMOUNT"


def test_consent_required_before_invalid_input(gw: Gateway) -> None:
    card = card_number_of(gw, member_id_of(gw, "grocery", "g-1"))
    assert answer(gw, lambda: service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 0, EUR, "", card_number=card))) == "CONSENT_REQUIRED"


def test_invalid_input_before_invalid_amount(gw: Gateway) -> None:
    assert answer(gw, lambda: service.earn_points(gw.services.ledger, EarnPoints(
        "grocery", "g-1", Money(0, "UAH"), "by-pigeon", "p-x", "k"))) == "INVALID_INPUT"
    assert answer(gw, lambda: service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 0, UAH, ""))) == "INVALID_INPUT"


def test_invalid_amount_before_currency_mismatch(gw: Gateway) -> None:
    assert answer(gw, lambda: service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 0, EUR, "k"))) == "INVALID_AMOUNT"
    assert answer(gw, lambda: service.earn_points(gw.services.ledger, EarnPoints(
        "grocery", "g-1", Money(0, "EUR"), "store", "p-x", "k"))) == "INVALID_AMOUNT"


def test_currency_mismatch_before_rate_limited(gw: Gateway) -> None:
    code = typed(gw)
    assert answer(gw, lambda: service.redeem_points(spent_budget(gw.services.ledger),
                                                    RedeemPoints("grocery", None, 100, EUR, "k",
                                                                 store_code=code))
                  ) == "CURRENCY_MISMATCH"


def typed(gw: Gateway) -> str:
    """A live store code's digits, as typed at the till (counted against the budget)."""
    return store_code_for(gw, "grocery", "g-1").digits


def test_request_errors_before_rate_limited_and_spend_no_budget(gw: Gateway) -> None:
    code = typed(gw)
    assert answer(gw, lambda: service.redeem_points(spent_budget(gw.services.ledger),
                                                    RedeemPoints("grocery", None, 0, UAH, "k",
                                                                 store_code=code))
                  ) == "INVALID_AMOUNT"
    counted = CodeGuesses.build()
    ledger = dataclasses.replace(gw.services.ledger, guesses=counted)
    for n in range(200):  # more than the budget: none of them is counted
        with pytest.raises(DomainError):
            service.redeem_points(ledger, RedeemPoints("grocery", None, 0, UAH, f"k{n}",
                                                       store_code=code))
    counted.store_digits_attempt("grocery")  # the budget is untouched


def test_rate_limited_before_idempotency_key_reused(gw: Gateway) -> None:
    code = typed(gw)
    assert answer(gw, lambda: service.earn_points(spent_budget(gw.services.ledger), EarnPoints(
        "grocery", None, Money(5_000, "UAH"), "store", "p-other", "seed",
        store_code=code))) == "RATE_LIMITED"


def test_idempotency_key_reused_before_unknown_member(gw: Gateway) -> None:
    assert answer(gw, lambda: service.earn_points(gw.services.ledger, EarnPoints(
        "grocery", "nobody", Money(5_000, "UAH"), "store", "p-other", "seed"))
                  ) == "IDEMPOTENCY_KEY_REUSED"


def test_unknown_member_before_rule_not_in_force(gw: Gateway) -> None:
    # The charity issues no points: an earn there is RULE_NOT_IN_FORCE, once a member is found.
    assert answer(gw, lambda: service.earn_points(gw.services.ledger, EarnPoints(
        "charity", "nobody", Money(5_000, "UAH"), "store", "p-x", "k"))) == "UNKNOWN_MEMBER"


def test_unknown_member_ranks_with_not_found() -> None:
    """No command names both a member and a hold or purchase that may be missing: earn,
    redeem and authorise name a member, capture/void a hold, return a purchase."""
    assert precedence(ErrorCode.UNKNOWN_MEMBER) + 1 == precedence(ErrorCode.NOT_FOUND)


def test_not_found_before_rule_not_in_force() -> None:
    """A return has no rule to check, a capture's rule is the one its hold was placed under;
    no command meets both."""
    assert precedence(ErrorCode.NOT_FOUND) + 1 == precedence(ErrorCode.RULE_NOT_IN_FORCE)


def test_rule_not_in_force_before_purchase_already_recorded(gw: Gateway) -> None:
    ledger = gw.services.ledger
    service.earn_points(ledger, EarnPoints("outlet", "o-1", UAH, "store", "o-p", "o-1"))
    before_rule = NOW - timedelta(days=4)  # inside the backdating window, before the rule
    assert answer(gw, lambda: service.earn_points(ledger, EarnPoints(
        "outlet", "o-1", UAH, "store", "o-p", "o-2", occurred_at=before_rule))
                  ) == "RULE_NOT_IN_FORCE"
    assert answer(gw, lambda: service.earn_points(ledger, EarnPoints(
        "outlet", "o-1", UAH, "store", "o-p", "o-3"))) == "PURCHASE_ALREADY_RECORDED"


def test_purchase_history_codes_belong_to_different_commands() -> None:
    """PURCHASE_ALREADY_RECORDED is an earn's, NOTHING_TO_RETURN a return's, and
    REDEMPTION_NOT_ACCEPTED a spend's: no command meets two of them."""
    assert precedence(ErrorCode.PURCHASE_ALREADY_RECORDED) + 1 == precedence(
        ErrorCode.NOTHING_TO_RETURN)
    assert precedence(ErrorCode.NOTHING_TO_RETURN) + 1 == precedence(
        ErrorCode.REDEMPTION_NOT_ACCEPTED)


def test_redemption_not_accepted_before_cap_exceeded(gw: Gateway) -> None:
    assert answer(gw, lambda: service.redeem_points(gw.services.ledger, RedeemPoints(
        "outlet", "o-1", 10**9, UAH, "k"))) == "REDEMPTION_NOT_ACCEPTED"


def test_cap_exceeded_before_insufficient_points(gw: Gateway) -> None:
    # 100.00 UAH takes at most a share of it in points; g-1 holds far fewer than asked.
    assert answer(gw, lambda: service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 1_000_000, UAH, "k"))) == "CAP_EXCEEDED"
    assert answer(gw, lambda: service.redeem_points(gw.services.ledger, RedeemPoints(
        "grocery", "g-1", 1_000_000, Money(10**10, "UAH"), "k"))) == "INSUFFICIENT_POINTS"


def test_insufficient_points_before_hold_state() -> None:
    """The balance is a spend's (redeem, authorise), the hold's state a capture's or void's:
    a capture moves points already held and never checks the wallet."""
    assert precedence(ErrorCode.INSUFFICIENT_POINTS) + 1 == precedence(
        ErrorCode.HOLD_ALREADY_SETTLED)


def test_hold_already_settled_before_hold_expired(gw: Gateway) -> None:
    ledger = gw.services.ledger
    placed = holds.authorise_redemption(ledger, AuthoriseRedemption(
        "grocery", "g-1", 60, Money(100_000, "UAH"), "h"))
    holds.capture_redemption(ledger, CaptureRedemption("grocery", placed.hold_id, "c1"))
    gw.services.clock.advance(timedelta(days=1))  # past the hold's TTL too
    assert answer(gw, lambda: holds.capture_redemption(ledger, CaptureRedemption(
        "grocery", placed.hold_id, "c2"))) == "HOLD_ALREADY_SETTLED"


def test_hold_expired_before_capture_exceeds_hold(gw: Gateway) -> None:
    ledger = gw.services.ledger
    placed = holds.authorise_redemption(ledger, AuthoriseRedemption(
        "grocery", "g-1", 60, Money(100_000, "UAH"), "h"))
    gw.services.clock.advance(timedelta(days=1))
    assert answer(gw, lambda: holds.capture_redemption(ledger, CaptureRedemption(
        "grocery", placed.hold_id, "c", points=1_000))) == "HOLD_EXPIRED"


def test_capture_amount_checked_before_the_hold(gw: Gateway) -> None:
    assert answer(gw, lambda: holds.capture_redemption(gw.services.ledger, CaptureRedemption(
        "grocery", "no-such-hold", "c", points=0))) == "INVALID_AMOUNT"
