"""Who has housekeeping due: one condition (``gateway.ledger.lot_repository.housekeeping_due``)
for every write's first check, the balance reads and the expiry job. A pending lot fully returned
while pending has nothing left to release: it is never due (every write on such a member used to
load its sweep state for nothing, and the expiry job opened a transaction for it every night)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.ledger import holds, service
from gateway.ledger.balances import member_balances
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.expiry import run_expiry
from gateway.ledger.hold_repository import HoldRepository
from gateway.ledger.model import AuthoriseRedemption, EarnPoints, ReturnPurchase
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.verify import verify_ledger
from tests.support import harness
from tests.support.catalog import catalog_with_pending_days
from tests.support.harness import NOW, track
from tests.support.members import link_with_code


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Gateway, FixedClock, str]:
    catalog = catalog_with_pending_days(tmp_path)
    clock = FixedClock(NOW)
    gw = build(harness.test_settings(tmp_path, catalog_dir=catalog), clock=clock)
    track(gw.services.engine)
    member = enrol_customer(gw.services.engine, clock, "electronics", "e-1").member_id
    link_with_code(gw.services.engine, clock, "grocery", "g-1", member)
    return gw, clock, member


def _due(gw: Gateway, clock: FixedClock, member: str) -> tuple[bool, list[tuple[int, int]]]:
    """(the write path's check, the expiry job's progress calls)."""
    with gw.services.engine.connect() as conn:
        due = LedgerRepository(conn).anything_due(member, clock.now())
    calls: list[tuple[int, int]] = []
    run_expiry(gw.services.ledger, lambda done, total: calls.append((done, total)))
    return due, calls


def _earn(gw: Gateway, partner: str, customer: str, minor: int, currency: str, key: str) -> int:
    cmd = EarnPoints(partner, customer, Money(minor, currency), "store", f"p-{key}", key)
    return service.earn_points(gw.services.ledger, cmd).points


def test_a_fully_returned_pending_lot_is_never_due(
    setup: tuple[Gateway, FixedClock, str],
) -> None:
    gw, clock, member = setup
    assert _earn(gw, "electronics", "e-1", 30000, "EUR", "k1") > 0
    service.return_purchase(gw.services.ledger, ReturnPurchase(
        "electronics", "p-k1", Money(30000, "EUR"), "ret"))
    clock.advance(timedelta(days=15))  # past the return window: nothing left to release
    assert _due(gw, clock, member) == (False, [])


def test_matured_pending_points_expired_points_and_lapsed_holds_are_due(
    setup: tuple[Gateway, FixedClock, str],
) -> None:
    gw, clock, member = setup
    _earn(gw, "electronics", "e-1", 30000, "EUR", "k1")
    assert _due(gw, clock, member) == (False, [])  # pending, inside its window
    clock.advance(timedelta(days=14))
    assert _due(gw, clock, member) == (True, [(1, 1)])  # matured: the job released it
    assert _due(gw, clock, member) == (False, [])

    _earn(gw, "grocery", "g-1", 100000, "UAH", "g1")
    holds.authorise_redemption(gw.services.ledger, AuthoriseRedemption(
        "grocery", "g-1", 60, Money(100000, "UAH"), "h1"))
    assert _due(gw, clock, member) == (False, [])
    clock.advance(timedelta(days=1))  # the hold lapsed
    assert _due(gw, clock, member) == (True, [(1, 1)])
    assert _due(gw, clock, member) == (False, [])

    clock.advance(timedelta(days=365))  # every lot past its expiry
    assert _due(gw, clock, member) == (True, [(1, 1)])
    assert _due(gw, clock, member) == (False, [])
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems


def test_lapsed_holds_and_their_lot_movements_are_two_statements(
    setup: tuple[Gateway, FixedClock, str],
) -> None:
    """However many holds lapsed, housekeeping reads them and what each took from its lots in
    two statements (it was one more per hold), each hold with its own takes."""
    gw, clock, member = setup
    _earn(gw, "grocery", "g-1", 100000, "UAH", "g1")
    clock.advance(timedelta(days=1))
    _earn(gw, "grocery", "g-1", 100000, "UAH", "g2")  # a second lot, expiring a day later
    placed = [holds.authorise_redemption(gw.services.ledger, AuthoriseRedemption(
        "grocery", "g-1", points, Money(200000, "UAH"), f"h{points}")) for points in (60, 90, 50)]
    clock.advance(timedelta(days=1))
    statements: list[str] = []

    def count(*args: object) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):  # not the driver's BEGIN
            statements.append(str(args[2]))

    engine = gw.services.engine
    with engine.connect() as conn:
        event.listen(engine, "before_cursor_execute", count)
        try:
            lapsed = HoldRepository(conn).lapsed([member], clock.now())
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2
    by_id = {hold.id: hold for hold in lapsed}
    assert sorted(by_id) == sorted(h.hold_id for h in placed)
    for hold in placed:
        takes = by_id[hold.hold_id].takes
        assert -sum(t.points for t in takes) == hold.points
    # 60 from the first lot, 90 = 40 of the first + 50 of the second, 50 from the second.
    assert sorted(len(by_id[h.hold_id].takes) for h in placed) == [1, 1, 2]


def test_balances_of_many_members_with_housekeeping_due_read_their_state_together(
    tmp_path: Path,
) -> None:
    """member_balances of members who all have something due loads their sweep states in the
    same statements whatever their number (it was four more per member), and shows each what
    its own next write will see."""
    clock = FixedClock(NOW)
    gw = harness.make_gateway(tmp_path, clock=clock)
    engine = gw.services.engine
    members = []
    for n in range(4):
        members.append(enrol_customer(engine, clock, "grocery", f"g-{n}").member_id)
        _earn(gw, "grocery", f"g-{n}", 100000 * (n + 1), "UAH", f"e{n}")
        holds.authorise_redemption(gw.services.ledger, AuthoriseRedemption(
            "grocery", f"g-{n}", 50, Money(100000, "UAH"), f"h{n}"))
    clock.advance(timedelta(days=1))  # every hold lapsed: all four have housekeeping due

    def reads(ids: list[str]) -> tuple[int, dict[str, tuple[int, int]]]:
        statements: list[str] = []

        def count(*args: object) -> None:
            if str(args[2]).lstrip().upper().startswith("SELECT"):
                statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            found = member_balances(engine, clock, ids)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements), {m: (b.available, b.held) for m, b in found.items()}

    one, first = reads(members[:1])
    many, every = reads(members)
    assert many == one
    assert every == {m: (100 * (n + 1), 0) for n, m in enumerate(members)}
    assert first == {members[0]: every[members[0]]}
