"""A hypothesis state machine over the ledger's commands, on a real SQLite file per example.

Three members, each linked at grocery, electronics and fuel, earn, redeem, authorise, capture
(all or part), void, return (part), expire (move the clock, run the job) and replay earlier
commands under their keys. A model keeps each member's wallet, held, pending and debt where the
arithmetic is simple; after every step the guarantees of ``gateway.ledger`` must hold:
balances sum to zero, stored balances equal their transfers (``verify``), no member balance on
the wrong side of zero, a rejected command and a replay change nothing.

Two machines: the demo catalog, and the same catalog with a 14-day return window at the
electronics shop (earned points wait on the member's pending account)."""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import Engine, select, text

from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.core.errors import (
    CapExceeded,
    CaptureExceedsHold,
    HoldAlreadySettled,
    HoldExpired,
    InsufficientPoints,
    InvalidAmount,
    NothingToReturn,
    PurchaseAlreadyRecorded,
)
from gateway.core.money import Money
from gateway.db.engine import make_engine
from gateway.db.tables import accounts
from gateway.jobs import run_expiry
from gateway.ledger.context import LedgerContext
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.holds import authorise_redemption, capture_redemption, void_redemption
from gateway.ledger.model import (
    AuthoriseRedemption,
    CaptureRedemption,
    EarnPoints,
    HoldPlaced,
    RedeemPoints,
    ReturnPurchase,
    VoidRedemption,
)
from gateway.ledger.service import earn_points, redeem_points, return_purchase
from gateway.ledger.verify import verify_ledger
from gateway.rules.store import RuleBook
from gateway.settings import DEFAULT_CATALOG, Settings
from partners.registry import Registry
from tests.support.harness import NOW, ledger_snapshot
from tests.support.members import link_with_code

PARTNERS = ("grocery", "electronics", "fuel")
CURRENCY = {"grocery": "UAH", "electronics": "EUR", "fuel": "UAH"}
MEMBERS = 3
OPENING = MEMBERS * len(PARTNERS)  # one opening purchase per member and partner
MIN_POINTS = {"grocery": 50, "electronics": 100, "fuel": 50}  # burn.min_points in the catalog
# The outcomes a command may legitimately be refused with; anything else is a bug.
# A capture over the hold (the capture rule asks up to 120 %) answers CAPTURE_EXCEEDS_HOLD.
REFUSALS = (InsufficientPoints, CapExceeded, NothingToReturn, HoldExpired, HoldAlreadySettled,
            CaptureExceedsHold,  # a capture of more than 100 % of its hold (percent up to 120)
            InvalidAmount, PurchaseAlreadyRecorded)

# A real SQLite file in WAL mode, on tmpfs where there is one: synchronous=FULL would otherwise
# spend most of the run waiting for fsync, which this test is not about.
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
AMOUNTS = st.one_of(st.sampled_from([50_000, 120_000, 300_000, 1_000_000]),
                    st.integers(100, 2_000_000))
SPENDER = st.one_of(st.just(0), st.integers(0, MEMBERS - 1))  # rank by wallet, richest first
RECENT = st.one_of(st.just(0), st.integers(0, 10**6))  # the newest half the time
PERCENT = st.one_of(st.integers(20, 100), st.integers(1, 150))
BASKETS = st.sampled_from([5_000, 60_000, 10**9])
STRANGER = st.integers(0, 4).map(lambda n: n == 0)  # one spend in five quotes another's receipt
SETTINGS = settings(max_examples=200, stateful_step_count=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


@dataclass(frozen=True)
class Template:
    """A database with the partners synced and the members enrolled and linked, copied for
    each example: building the whole application per example (GraphQL schema included) would
    cost more than the example itself."""

    db: Path
    registry: Registry
    member_ids: tuple[str, ...]


@cache
def template(catalog: Path) -> Template:
    tmp = Path(tempfile.mkdtemp(prefix="ledger-sm-template-"))
    clock = FixedClock(NOW)
    gw = build(Settings(database_url=f"sqlite:///{tmp / 'g.db'}", catalog_dir=catalog),
               clock=clock)
    engine, member_ids = gw.services.engine, []
    for m in range(MEMBERS):
        member = enrol_customer(engine, clock, PARTNERS[0], customer(PARTNERS[0], m))
        for partner in PARTNERS[1:]:
            link_with_code(engine, clock, partner, customer(partner, m), member.member_id)
        member_ids.append(member.member_id)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return Template(tmp / "g.db", Registry.from_catalog(catalog), tuple(member_ids))


def customer(partner: str, member: int) -> str:
    return f"{partner}-c{member}"


@dataclass(frozen=True)
class _Services:
    engine: Engine


@dataclass(frozen=True)
class Handle:
    """What ``ledger_snapshot`` reads of a gateway."""

    services: _Services


@cache
def pending_catalog() -> Path:
    """The demo catalog with a 14-day return window at electronics (built once per run)."""
    catalog = Path(tempfile.mkdtemp(prefix="catalog-")) / "catalog"
    shutil.copytree(DEFAULT_CATALOG, catalog)
    toml = catalog / "electronics.toml"
    body, count = re.subn(r"pending_days = \d+", "pending_days = 14", toml.read_text())
    assert count == 1
    toml.write_text(body)
    return catalog


@dataclass
class Wallet:
    available: int = 0
    held: int = 0
    pending: int = 0
    debt: int = 0  # positive: points owed

    @property
    def total(self) -> int:
        return self.available + self.held + self.pending - self.debt


@dataclass(frozen=True)
class Purchase:
    partner: str
    purchase_id: str
    member: int
    amount_minor: int


@dataclass(frozen=True)
class Done:
    """A command that succeeded, with its answer: replayed later under the same key."""

    call: Callable[..., Any]
    command: Any
    result: Any


class LedgerMachine(RuleBasedStateMachine):
    catalog: Path = DEFAULT_CATALOG
    pending_days: dict[str, int] = {}  # noqa: RUF012 - per-class constant

    def __init__(self) -> None:
        super().__init__()
        self.serial = 0
        self.holds: list[tuple[HoldPlaced, int, str]] = []  # (hold, member, partner)
        self.done: list[Done] = []
        self.purchases: list[Purchase] = []
        self.paid_with_points: list[Purchase] = []  # purchases a spend or hold referred to

    # --- set-up ------------------------------------------------------------------------------
    @initialize(opening=st.lists(AMOUNTS, min_size=OPENING, max_size=OPENING))
    def fresh_database(self, opening: list[int]) -> None:
        """One database file per example, a copy of the template; every member then shops
        once at every partner, so spends, holds and returns have something to work on."""
        base = template(self.catalog)
        self.tmp = Path(tempfile.mkdtemp(prefix="ledger-sm-", dir=SCRATCH))
        shutil.copyfile(base.db, self.tmp / "g.db")
        self.clock = FixedClock(NOW)
        engine = make_engine(f"sqlite:///{self.tmp / 'g.db'}")
        self.ledger = LedgerContext(engine, RuleBook(engine, base.registry), self.clock)
        self.gw = Handle(_Services(engine))
        self.member_ids = list(base.member_ids)
        self.model = [Wallet() for _ in range(MEMBERS)]
        shops = itertools.product(range(MEMBERS), PARTNERS)
        for (member, partner), amount in zip(shops, opening, strict=True):
            self.earn(member, partner, amount, "store")

    def teardown(self) -> None:
        gw = getattr(self, "gw", None)
        if gw is not None:
            gw.services.engine.dispose()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers -----------------------------------------------------------------------------
    customer = staticmethod(customer)

    def key(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}-{self.serial}"

    def stored(self, member: int) -> Wallet:
        return self.stored_all()[member]

    def stored_all(self) -> list[Wallet]:
        """Every member's stored balances in one statement (``member_balance`` per member
        would cost a unit of work each, after every step)."""
        with self.gw.services.engine.connect() as conn:
            rows = conn.execute(
                select(accounts.c.member_id, accounts.c.kind, accounts.c.balance)
                .where(accounts.c.member_id.in_(self.member_ids))
            ).all()
        found = {(member, kind): int(balance) for member, kind, balance in rows}

        def of(member: str, kind: str) -> int:
            return found.get((member, kind), 0)

        return [Wallet(of(m, "wallet"), of(m, "held"), of(m, "pending"), -of(m, "debt"))
                for m in self.member_ids]

    def attempt(self, call: Callable[..., Any], command: Any) -> Any | None:
        """Run a command; on a refusal assert nothing changed and return None."""
        before = ledger_snapshot(self.gw)
        try:
            result = call(self.ledger, command)
        except REFUSALS:
            assert ledger_snapshot(self.gw) == before, f"refused {command} changed the ledger"
            return None
        self.done.append(Done(call, command, result))
        return result

    # --- rules -------------------------------------------------------------------------------
    @rule(member=st.integers(0, MEMBERS - 1),
          partner=st.sampled_from(PARTNERS),
          amount=AMOUNTS, channel=st.sampled_from(["store", "app", "online"]))
    def earn_rule(self, member: int, partner: str, amount: int, channel: str) -> None:
        self.earn(member, partner, amount, channel)

    def earn(self, member: int, partner: str, amount: int, channel: str) -> None:
        purchase_id = self.key("p")
        cmd = EarnPoints(partner, self.customer(partner, member), Money(amount, CURRENCY[partner]),
                         channel, purchase_id, self.key("earn"))
        result = self.attempt(earn_points, cmd)
        if result is None:
            return
        self.purchases.append(Purchase(partner, purchase_id, member, amount))
        w = self.model[member]
        assert result.points >= 0
        if self.pending_days.get(partner):
            assert (result.pending, result.debt_repaid) == (result.points, 0)
            w.pending += result.points
        else:
            assert result.pending == 0
            assert result.debt_repaid == min(result.points, w.debt)
            w.available += result.points - result.debt_repaid
            w.debt -= result.debt_repaid
        assert result.available == w.available

    def recent(self, items: list[Any], index: int | None) -> Any:
        """An item by ``index`` counted from the newest (None: none), so the latest purchase
        or hold is the one most often acted on next."""
        return None if index is None or not items else items[-1 - index % len(items)]

    def _spend(self, call: Callable[..., Any], member: int, partner: str, percent: int,
               basket: int, which: int | None, stranger: bool) -> Any:
        """Spend ``percent`` of the member's wallet (over 100: more than it holds), at a
        partner or against an earlier purchase there; the purchase's own member spends unless
        ``stranger`` (another member quoting someone else's receipt)."""
        purchase: Purchase | None = self.recent(self.purchases, which)
        if purchase is not None:
            partner = purchase.partner
            member = (purchase.member + 1) % MEMBERS if stranger else purchase.member
        else:  # the richest member first: most generated spends should be possible
            member = sorted(range(MEMBERS), key=lambda m: -self.model[m].available)[member]
        w = self.model[member]
        points = max(MIN_POINTS[partner], w.available * percent // 100)
        cmd = RedeemPoints(partner, self.customer(partner, member),
                           points, Money(basket, CURRENCY[partner]), self.key("spend"),
                           purchase_id=purchase.purchase_id if purchase else None)
        result = self.attempt(call, AuthoriseRedemption.of(cmd)
                              if call is authorise_redemption else cmd)
        if result is None:
            return None
        if purchase is not None:
            self.paid_with_points.append(purchase)
        assert points <= w.available
        w.available -= points
        assert result.available == w.available
        return result, member, partner

    @rule(member=SPENDER, partner=st.sampled_from(PARTNERS),
          percent=PERCENT, basket=BASKETS, which=st.one_of(st.none(), RECENT),
          stranger=STRANGER)
    def redeem(self, member: int, partner: str, percent: int, basket: int,
               which: int | None, stranger: bool) -> None:
        self._spend(redeem_points, member, partner, percent, basket, which, stranger)

    @rule(member=SPENDER, partner=st.sampled_from(PARTNERS),
          percent=PERCENT, basket=BASKETS, which=st.one_of(st.none(), RECENT),
          stranger=STRANGER)
    def authorise(self, member: int, partner: str, percent: int, basket: int,
                  which: int | None, stranger: bool) -> None:
        spent = self._spend(authorise_redemption, member, partner, percent, basket, which,
                            stranger)
        if spent is not None:
            hold, member, partner = spent
            self.model[member].held += hold.points
            self.holds.append((hold, member, partner))

    @precondition(lambda self: bool(self.holds))
    @rule(which=RECENT, percent=st.one_of(st.none(), st.integers(1, 120)))
    def capture(self, which: int, percent: int | None) -> None:
        """Capture everything (None) or ``percent`` of a hold."""
        hold, member, partner = self.recent(self.holds, which)
        part = None if percent is None else max(1, hold.points * percent // 100)
        cmd = CaptureRedemption(partner, hold.hold_id, self.key("capture"), points=part)
        result = self.attempt(capture_redemption, cmd)
        if result is None:
            return
        captured = hold.points if part is None else part
        assert (result.points, result.released) == (captured, hold.points - captured)
        w = self.model[member]
        w.held -= hold.points
        w.available += result.released
        assert result.available == w.available

    @precondition(lambda self: bool(self.holds))
    @rule(which=RECENT)
    def void(self, which: int) -> None:
        hold, member, partner = self.recent(self.holds, which)
        result = self.attempt(void_redemption,
                              VoidRedemption(partner, hold.hold_id, self.key("void")))
        if result is None:
            return
        assert result.released == hold.points
        w = self.model[member]
        w.held -= hold.points
        w.available += hold.points
        assert result.available == w.available

    @precondition(lambda self: bool(self.purchases))
    @rule(which=RECENT, percent=st.integers(1, 100), paid_with_points=st.booleans())
    def return_part(self, which: int, percent: int, paid_with_points: bool) -> None:
        """Return part of a purchase; half the time one that points paid for (refunds)."""
        purchases = self.paid_with_points if paid_with_points else []
        purchase: Purchase = self.recent(purchases or self.purchases, which)
        amount = max(1, purchase.amount_minor * percent // 100)
        cmd = ReturnPurchase(purchase.partner, purchase.purchase_id,
                             Money(amount, CURRENCY[purchase.partner]), self.key("return"))
        before = self.model[purchase.member]
        result = self.attempt(return_purchase, cmd)
        if result is None:
            return
        assert min(result.points_reversed, result.points_owed, result.points_unrecovered,
                   result.points_refunded) >= 0
        stored = self.stored(purchase.member)
        assert (result.available, result.debt) == (stored.available, stored.debt)
        assert stored.held == before.held
        # Taking back never creates points: the total falls by what was reversed or owed,
        # rises by the refund, and no more than that (lapsed refunds may expire at once).
        assert stored.total <= before.total + result.points_refunded
        self.model[purchase.member] = stored

    @rule(days=st.sampled_from([1, 7, 14, 30, 200, 366]))
    def expire(self, days: int) -> None:
        before = self.stored_all()
        self.clock.advance(timedelta(days=days))
        run_expiry(self.ledger)
        for m, after in enumerate(self.stored_all()):
            assert after.held == 0, "every hold's TTL is under a day"
            assert after.total <= before[m].total
            assert after.debt <= before[m].debt
            if days >= 14:
                assert after.pending == 0, "the job releases pending points past the window"
            if days >= 366:
                assert (after.available, after.pending) == (0, 0), "every lot has expired"
            self.model[m] = after

    @precondition(lambda self: bool(self.done))
    @rule(index=st.integers(0, 10**6))
    def replay(self, index: int) -> None:
        done = self.done[index % len(self.done)]
        before = ledger_snapshot(self.gw)
        again = done.call(self.ledger, done.command)
        assert again == done.result
        assert ledger_snapshot(self.gw) == before

    # --- invariants ----------------------------------------------------------------------------
    @invariant()
    def balances_sum_to_zero(self) -> None:
        if not hasattr(self, "gw"):
            return
        with self.gw.services.engine.connect() as conn:
            total = conn.execute(text(
                "SELECT COALESCE(SUM(COALESCE(c.s, 0) - COALESCE(d.s, 0)), 0) FROM accounts a "
                "LEFT JOIN (SELECT credit_account_id id, SUM(amount) s FROM transfers "
                "GROUP BY credit_account_id) c ON c.id = a.id "
                "LEFT JOIN (SELECT debit_account_id id, SUM(amount) s FROM transfers "
                "GROUP BY debit_account_id) d ON d.id = a.id")).scalar_one()
            wrong_side = conn.execute(text(
                "SELECT code, balance FROM accounts WHERE (kind IN ('wallet','held','pending') "
                "AND balance < 0) OR (kind = 'debt' AND balance > 0)")).all()
        assert total == 0
        assert wrong_side == []

    @invariant()
    def verify_is_clean(self) -> None:
        if not hasattr(self, "gw"):
            return
        report = verify_ledger(self.gw.services.engine)
        assert report.ok, report.problems

    @invariant()
    def model_matches_the_stored_balances(self) -> None:
        if not hasattr(self, "gw"):
            return
        assert self.stored_all() == self.model


class PendingLedgerMachine(LedgerMachine):
    catalog = DEFAULT_CATALOG  # replaced in the test below, once per run
    pending_days = {"electronics": 14}  # noqa: RUF012


LedgerMachine.TestCase.settings = SETTINGS
TestLedger = LedgerMachine.TestCase


def test_ledger_with_a_return_window() -> None:
    PendingLedgerMachine.catalog = pending_catalog()
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(PendingLedgerMachine, settings=settings(
        SETTINGS, max_examples=100))
