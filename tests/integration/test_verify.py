"""``verify`` proves stored state agrees with the append-only history: clean after a mixed
workload, and each kind of corruption is reported, exactly and alone. The CLI exits 0 / 1."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.jobs import run_expiry
from gateway.ledger.balances import member_balance
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.holds import authorise_redemption, capture_redemption, void_redemption
from gateway.ledger.model import (
    AuthoriseRedemption,
    CaptureRedemption,
    EarnPoints,
    RedeemPoints,
    ReturnPurchase,
    VoidRedemption,
)
from gateway.ledger.service import earn_points, redeem_points, return_purchase
from gateway.ledger.verify import verify_ledger
from tests.support.harness import BACKEND, NOW, make_gateway
from tests.support.members import link_with_code

REPO = Path(__file__).resolve().parents[2]


def workload(gw: Gateway, clock: FixedClock) -> str:
    """Earn at two partners, redeem, hold/capture/void, return with refund and debt, expire."""
    engine, ledger = gw.services.engine, gw.services.ledger
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    link_with_code(engine, clock, "electronics", "e-1", member)
    link_with_code(engine, clock, "fuel", "f-1", member)
    enrol_customer(engine, clock, "grocery", "g-2")

    def uah(minor: int) -> Money:
        return Money(minor, "UAH")

    def eur(minor: int) -> Money:
        return Money(minor, "EUR")

    earn_points(ledger, EarnPoints("grocery", "g-1", uah(120_000), "store", "p-1", "e-1"))
    earn_points(ledger, EarnPoints("electronics", "e-1", eur(50_000), "online", "x-1", "e-2"))
    earn_points(ledger, EarnPoints("fuel", "f-1", uah(40_000), "store", "f-1", "e-3"))
    earn_points(ledger, EarnPoints("grocery", "g-2", uah(80_000), "app", "p-2", "e-4"))
    redeem_points(ledger, RedeemPoints("electronics", "e-1", 200, eur(10_000), "r-1"))
    redeem_points(ledger, RedeemPoints("grocery", "g-1", 50, uah(20_000), "r-2",
                                       purchase_id="p-1"))
    hold = authorise_redemption(ledger, AuthoriseRedemption(
        "grocery", "g-2", 60, uah(20_000), "h-1", purchase_id="p-2"))
    capture_redemption(ledger, CaptureRedemption("grocery", hold.hold_id, "c-1", points=55))
    hold2 = authorise_redemption(ledger, AuthoriseRedemption("fuel", "f-1", 50, uah(50_000), "h-2"))
    void_redemption(ledger, VoidRedemption("fuel", hold2.hold_id, "v-1"))
    authorise_redemption(ledger, AuthoriseRedemption("grocery", "g-1", 50, uah(20_000), "h-3"))
    return_purchase(ledger, ReturnPurchase("grocery", "p-1", uah(60_000), "ret-1"))
    return_purchase(ledger, ReturnPurchase("grocery", "p-2", uah(80_000), "ret-2"))
    clock.advance(timedelta(days=366))
    assert run_expiry(ledger) > 0
    return member


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def gw(tmp_path: Path, clock: FixedClock) -> Gateway:
    return make_gateway(tmp_path, clock=clock)


def test_clean_after_a_mixed_workload(gw: Gateway, clock: FixedClock) -> None:
    member = workload(gw, clock)
    report = verify_ledger(gw.services.engine)
    assert report.problems == []
    assert report.ok and report.checks == 6
    balance = member_balance(gw.services.engine, clock, member)
    assert (balance.available, balance.held, balance.pending) == (0, 0, 0)  # all expired


def test_clean_on_an_empty_ledger(gw: Gateway) -> None:
    assert verify_ledger(gw.services.engine).problems == []


def corrupt(gw: Gateway, sql: str, **params: object) -> None:
    with gw.services.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_corrupted_wallet_balance_is_reported(gw: Gateway, clock: FixedClock) -> None:
    engine, ledger = gw.services.engine, gw.services.ledger
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    earn_points(ledger, EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p", "k"))
    assert verify_ledger(engine).ok
    wallet = f"member:{member}:wallet"
    corrupt(gw, "UPDATE accounts SET balance = 125 WHERE code = :c", c=wallet)
    assert verify_ledger(engine).problems == [
        f"stored balance differs from its transfers: {wallet}: stored 125, expected 120",
        "balances do not sum to zero: all accounts: stored 5, expected 0",
        f"wallet or pending balance differs from its lots: {wallet}: stored 125, expected 120",
    ]


def test_corrupted_held_balance_is_reported(gw: Gateway, clock: FixedClock) -> None:
    engine, ledger = gw.services.engine, gw.services.ledger
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    earn_points(ledger, EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p", "k"))
    authorise_redemption(ledger, AuthoriseRedemption("grocery", "g-1", 60, Money(20_000, "UAH"),
                                                     "h"))
    held = f"member:{member}:held"
    corrupt(gw, "UPDATE accounts SET balance = 0 WHERE code = :c", c=held)
    assert verify_ledger(engine).problems == [
        f"stored balance differs from its transfers: {held}: stored 0, expected 60",
        "balances do not sum to zero: all accounts: stored -60, expected 0",
        f"held balance differs from open holds: {held}: stored 0, expected 60",
    ]


def test_corrupted_lot_remaining_is_reported(gw: Gateway, clock: FixedClock) -> None:
    engine, ledger = gw.services.engine, gw.services.ledger
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    earn_points(ledger, EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p", "k"))
    redeem_points(ledger, RedeemPoints("grocery", "g-1", 50, Money(20_000, "UAH"), "r"))
    with engine.connect() as conn:
        lot_id = conn.execute(select(t.lots.c.id)).scalar_one()
    corrupt(gw, "UPDATE lots SET remaining = 100 WHERE id = :i", i=lot_id)
    assert verify_ledger(engine).problems == [
        f"lot remaining differs from its movements: lot {lot_id}: stored 100, expected 70",
        "wallet or pending balance differs from its lots: "
        f"member:{member}:wallet: stored 70, expected 100",
    ]


def test_corrupted_hold_status_is_reported(gw: Gateway, clock: FixedClock) -> None:
    engine, ledger = gw.services.engine, gw.services.ledger
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    earn_points(ledger, EarnPoints("grocery", "g-1", Money(120_000, "UAH"), "store", "p", "k"))
    authorise_redemption(ledger, AuthoriseRedemption("grocery", "g-1", 60, Money(20_000, "UAH"),
                                                     "h"))
    corrupt(gw, "UPDATE holds SET status = 'voided'")
    assert verify_ledger(engine).problems == [
        f"held balance differs from open holds: member:{member}:held: stored 60, expected 0",
    ]


# --- the CLI ---------------------------------------------------------------------------------
def run_cli(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gateway", "verify"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_verify_exit_codes(tmp_path: Path, gw: Gateway, clock: FixedClock) -> None:
    member = workload(gw, clock)
    url = gw.services.engine.url.render_as_string(hide_password=False)
    if BACKEND == "sqlite":
        assert url == f"sqlite:///{tmp_path / 'gateway.db'}"
    clean = run_cli(url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "7 checks, 0 problems" in clean.stdout  # the 6 ledger checks + settlement's day rollups
    assert "FAIL" not in clean.stdout

    with gw.services.engine.connect() as conn:
        # The other member's wallet (0 after the expiry): any stored drift is a problem.
        wallet = conn.execute(select(t.accounts.c.code).where(
            t.accounts.c.kind == "wallet", t.accounts.c.member_id != member)).scalar_one()
    corrupt(gw, "UPDATE accounts SET balance = balance + 3 WHERE code = :c", c=wallet)
    broken = run_cli(url)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"FAIL stored balance differs from its transfers: {wallet}: stored 3" in broken.stdout
    assert "balances do not sum to zero: all accounts: stored 3, expected 0" in broken.stdout
    assert "7 checks, 3 problems" in broken.stdout


def test_zero_sum_check_catches_a_drifted_balance_on_its_own(tmp_path: Path) -> None:
    """The zero-sum check is not a tautology: with check 1 (stored vs transfers) left aside,
    a stored member balance that drifted still makes all balances sum to non-zero."""
    from gateway.ledger.verify import _CHECKS

    gw = make_gateway(tmp_path)
    clock = gw.services.clock
    enrol_customer(gw.services.engine, clock, "grocery", "z-1")
    earn_points(gw.services.ledger, EarnPoints("grocery", "z-1", Money(50000, "UAH"), "store",
                                               "z-p1", "z-k1"))
    title, sql = next(c for c in _CHECKS if c[0] == "balances do not sum to zero")
    with gw.services.engine.connect() as conn:
        assert conn.execute(text(sql)).all() == []
    with gw.services.engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET balance = balance + 7 WHERE kind = 'wallet'"))
    with gw.services.engine.connect() as conn:
        assert conn.execute(text(sql)).all() == [("all accounts", 7, 0)]
    assert title in " ".join(verify_ledger(gw.services.engine).problems)
