"""The worked example of docs/settlement.md, driven through the real ledger services.

January 2026 is closed on 1 February; February stays open. Fuel points expire after 10 days
here (a copy of the catalog with ``expiry_days = 10`` for fuel), so expiry happens in February."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.jobs import run_expiry
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from gateway.settings import DEFAULT_CATALOG, Settings
from gateway.settlement.model import Period
from tests.support.members import link_with_code

JAN = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
FEB = Period(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


def at(day: int, month: int = 1, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def short_expiry_catalog(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    shutil.copytree(DEFAULT_CATALOG, catalog)
    fuel = catalog / "fuel.toml"
    # The fuel station uploads its sales late (up to a month: its backdating window), which is
    # how the February report gets a late January sale as an adjustment.
    fuel.write_text(fuel.read_text().replace("expiry_days = 365", "expiry_days = 10")
                    .replace("hold_ttl_seconds = 600", "hold_ttl_seconds = 600\n"
                             "max_backdate_days = 31"))
    return catalog


def gateway_at(tmp_path: Path, clock: FixedClock) -> Gateway:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
                        issuer="https://gateway.test", catalog_dir=short_expiry_catalog(tmp_path))
    return build(settings, clock=clock)


def earn(gw: Gateway, partner: str, customer: str, minor: int, currency: str, purchase: str,
         occurred_at: datetime | None = None) -> None:
    service.earn_points(gw.services.ledger, m.EarnPoints(
        partner, customer, Money(minor, currency), "store", purchase, f"earn-{purchase}",
        occurred_at=occurred_at))


def redeem(gw: Gateway, partner: str, customer: str, points: int, basket: Money,
           key: str, purchase: str | None = None) -> None:
    service.redeem_points(gw.services.ledger, m.RedeemPoints(
        partner, customer, points, basket, key, purchase_id=purchase))


def give_back(gw: Gateway, partner: str, purchase: str, amount: Money, key: str) -> None:
    service.return_purchase(gw.services.ledger, m.ReturnPurchase(partner, purchase, amount, key))


def run_worked_example(tmp_path: Path, *, close_january: bool = True) -> tuple[Gateway, FixedClock]:
    clock = FixedClock(at(10))
    gw = gateway_at(tmp_path, clock)
    engine = gw.services.engine
    member = enrol_customer(engine, clock, "grocery", "g-1").member_id
    for partner, customer in (("electronics", "e-1"), ("charity", "c-1"), ("fuel", "f-1")):
        link_with_code(engine, clock, partner, customer, member)
    # January.
    earn(gw, "grocery", "g-1", 120_000, "UAH", "g-p1")                 # 120 points
    clock.advance(timedelta(minutes=1))
    earn(gw, "electronics", "e-1", 33_300, "EUR", "e-p1")              # 333 points
    clock.advance(timedelta(minutes=1))
    redeem(gw, "electronics", "e-1", 100, Money(5_000, "EUR"), "e-r1", "e-p1")
    clock.advance(timedelta(minutes=1))
    redeem(gw, "charity", "c-1", 55, Money(550, "UAH"), "c-d1")        # a donation
    if close_january:
        from gateway.settlement.service import close_period

        clock.set(at(1, 2))
        close_period(engine, gw.services.rules, clock, JAN, "EUR", actor="test")
    # February.
    clock.set(at(3, 2))
    give_back(gw, "grocery", "g-p1", Money(60_000, "UAH"), "g-ret1")   # half of g-p1
    clock.set(at(4, 2))
    give_back(gw, "electronics", "e-p1", Money(11_100, "EUR"), "e-ret1")  # a third of e-p1
    clock.set(at(5, 2))
    earn(gw, "fuel", "f-1", 100_000, "UAH", "f-p1", occurred_at=at(20))  # late upload: 50
    clock.set(at(20, 2))
    run_expiry(gw.services.ledger)                                     # fuel's 50 expire
    clock.set(at(2, 3))
    return gw, clock
