"""Prize draws on this run's real database (decision 033, docs/draws.md): entries from
qualifying purchases through the events (a redelivered event adds nothing; a return withdraws
them by the documented rule), entries bought with points (the balance falls by exactly the
price, a replay spends nothing, the per-member limit and a closed draw refuse and change
nothing), the close freezes and publishes, and settlement pays the owner for the points.

Grocery earns 1 point per 10.00 UAH; the draw gives 2 entries per purchase of 500.00 UAH or
more and sells entries at 10 points; 5 entries per member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.errors import (
    DrawClosed,
    DrawEntryLimit,
    DrawStillOpen,
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidInput,
)
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.draws import fairness
from gateway.draws.entries import enter_draw, held
from gateway.draws.service import EVERY, close_draw, proof, show_draw, verify_document
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.balances import wallet
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.verify import verify_ledger
from gateway.outbox import read_events
from gateway.settlement.model import Figures, Period
from gateway.settlement.service import settlement_report
from tests.support.draws import drain, grocery_draw
from tests.support.harness import NOW, ledger_snapshot, make_gateway

NOV = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, clock=FixedClock(NOW))


def member(gw: Gateway, customer: str) -> str:
    return enrol_customer(gw.services.engine, gw.services.clock, "grocery", customer).member_id


def earn(gw: Gateway, customer: str, minor: int, purchase: str) -> None:
    service.earn_points(gw.services.ledger, m.EarnPoints(
        "grocery", customer, Money(minor, "UAH"), "store", purchase, f"k-{purchase}"))


def give_back(gw: Gateway, purchase: str, minor: int, key: str) -> None:
    service.return_purchase(gw.services.ledger, m.ReturnPurchase(
        "grocery", purchase, Money(minor, "UAH"), key))


def entries_of(gw: Gateway, draw_id: str, member_id: str) -> int:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        return held(uow.conn, draw_id, member_id)


def available(gw: Gateway, member_id: str) -> int:
    return wallet(gw.services.engine, gw.services.clock, member_id).balance.available


def rows(gw: Gateway) -> int:
    with UnitOfWork(gw.services.engine, write=False) as uow:
        return int(uow.conn.execute(select(func.count()).select_from(t.draw_entries))
                   .scalar_one())


def test_qualifying_purchases_give_entries_once_per_event(gw: Gateway) -> None:
    draw = grocery_draw(gw)
    a, b = member(gw, "g-1"), member(gw, "g-2")
    earn(gw, "g-1", 120_000, "p-1")  # 1,200.00 UAH: qualifies, 2 entries
    earn(gw, "g-2", 30_000, "p-2")  # 300.00 UAH: below the 500.00 minimum
    earn(gw, "g-2", 60_000, "p-3")  # 600.00 UAH: 2 entries
    drain(gw)
    assert (entries_of(gw, draw.id, a), entries_of(gw, draw.id, b)) == (2, 2)
    written = rows(gw)
    assert written == 2  # the 300.00 purchase wrote nothing
    assert drain(gw) == 3  # every event redelivered ...
    assert rows(gw) == written  # ... and nothing added
    assert (entries_of(gw, draw.id, a), entries_of(gw, draw.id, b)) == (2, 2)
    for n in range(3, 6):  # 3 more purchases: 2 + 2 + (limit 5) 1
        earn(gw, "g-1", 50_000, f"p-a{n}")
    drain(gw)
    assert entries_of(gw, draw.id, a) == 5


def test_a_return_below_the_minimum_withdraws_the_entries_before_close(gw: Gateway) -> None:
    draw = grocery_draw(gw)
    c, d = member(gw, "g-3"), member(gw, "g-4")
    earn(gw, "g-3", 80_000, "p-c")  # 800.00 UAH
    earn(gw, "g-4", 100_000, "p-d")  # 1,000.00 UAH
    drain(gw)
    give_back(gw, "p-c", 40_000, "r-c")  # 400.00 left: below 500.00, entries withdrawn
    give_back(gw, "p-d", 20_000, "r-d")  # 800.00 left: still qualifies, entries kept
    drain(gw)
    drain(gw)  # redelivered returns change nothing either
    assert (entries_of(gw, draw.id, c), entries_of(gw, draw.id, d)) == (0, 2)
    give_back(gw, "p-d", 40_000, "r-d2")  # 400.00 left now: withdrawn
    drain(gw)
    assert entries_of(gw, draw.id, d) == 0


def test_after_close_a_return_or_a_late_purchase_changes_nothing(gw: Gateway) -> None:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw)
    a = member(gw, "g-1")
    earn(gw, "g-1", 120_000, "p-1")
    drain(gw)
    clock.advance(timedelta(days=7))
    closed = close_draw(gw.services.engine, clock.now(), draw.id, EVERY)
    assert [e.entries for e in closed.entrants] == [2]
    give_back(gw, "p-1", 120_000, "r-1")
    earn(gw, "g-1", 90_000, "p-late")
    before = rows(gw)
    drain(gw)
    assert rows(gw) == before
    assert entries_of(gw, draw.id, a) == 2
    assert show_draw(gw.services.engine, draw.id, EVERY).draw.status == "closed"


def test_entries_bought_with_points(gw: Gateway) -> None:
    draw = grocery_draw(gw)
    a = member(gw, "g-1")
    earn(gw, "g-1", 120_000, "p-1")  # 120 points, 2 entries
    drain(gw)
    bought = enter_draw(gw.services.ledger, a, draw.id, 3, "e-1")
    assert (bought.entries, bought.total_entries, bought.points, bought.available) == (
        3, 5, 30, 90)
    assert available(gw, a) == 90
    again = enter_draw(gw.services.ledger, a, draw.id, 3, "e-1")  # a replay
    assert again == bought and available(gw, a) == 90
    assert entries_of(gw, draw.id, a) == 5
    with pytest.raises(IdempotencyKeyReused):
        enter_draw(gw.services.ledger, a, draw.id, 1, "e-1")
    snapshot = ledger_snapshot(gw)
    with pytest.raises(DrawEntryLimit) as refused:
        enter_draw(gw.services.ledger, a, draw.id, 1, "e-2")
    assert (refused.value.limit, refused.value.held, refused.value.field) == (5, 5, "entries")
    assert ledger_snapshot(gw) == snapshot and entries_of(gw, draw.id, a) == 5
    verified = verify_ledger(gw.services.engine)
    assert verified.ok


def test_not_enough_points_and_a_closed_draw_refuse_and_change_nothing(gw: Gateway) -> None:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw, points_per_entry=50)
    b = member(gw, "g-2")
    earn(gw, "g-2", 60_000, "p-2")  # 60 points
    drain(gw)
    snapshot = ledger_snapshot(gw)
    with pytest.raises(InsufficientPoints) as poor:
        enter_draw(gw.services.ledger, b, draw.id, 2, "e-1")  # 100 points
    assert (poor.value.requested, poor.value.available) == (100, 60)
    clock.advance(timedelta(days=7))  # closes_at: no more entries
    with pytest.raises(DrawClosed):
        enter_draw(gw.services.ledger, b, draw.id, 1, "e-2")
    assert ledger_snapshot(gw) == snapshot
    assert entries_of(gw, draw.id, b) == 2


def test_close_freezes_publishes_and_verifies(gw: Gateway) -> None:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw)
    ids = [member(gw, f"g-{n}") for n in range(1, 6)]
    for n in range(1, 6):
        earn(gw, f"g-{n}", 50_000 * n, f"p-{n}")  # 500.00 .. 2,500.00 UAH: 2 entries each
    drain(gw)
    enter_draw(gw.services.ledger, ids[0], draw.id, 3, "e-1")
    with pytest.raises(DrawStillOpen):
        close_draw(gw.services.engine, clock.now(), draw.id, EVERY)
    before = proof(gw.services.engine, draw.id)
    assert "seed" not in before and before["commitment"] == draw.commitment
    clock.advance(timedelta(days=7))
    closed = close_draw(gw.services.engine, clock.now(), draw.id, EVERY)
    assert sorted(e.entries for e in closed.entrants) == [2, 2, 2, 2, 5]
    assert len(closed.winners) == 3  # a bike and two vouchers, three different members
    assert len({w.entrant for w in closed.winners}) == 3
    body = proof(gw.services.engine, draw.id)
    assert fairness.commitment(bytes.fromhex(body["seed"])) == draw.commitment
    assert verify_document(body) == []
    assert close_draw(gw.services.engine, clock.now(), draw.id, EVERY) == closed  # once
    with UnitOfWork(gw.services.engine, write=False) as uow:
        published = read_events(uow.conn, limit=1000, types=["draw.closed"])
    assert [(e.partner_id, e.data["draw_id"], e.data["entries"], e.data["winners"])
            for e in published] == [("grocery", draw.id, 13, 3)]
    # The public list names no member: entrants are HMACs under the draw's own key.
    assert not {e["entrant"] for e in body["entries"]} & set(ids)
    tampered = {**body, "seed": "00" * 32}
    assert "SHA-256 of the seed" in verify_document(tampered)[0]


def test_points_spent_on_entries_settle_to_the_owner(gw: Gateway) -> None:
    draw = grocery_draw(gw)
    a, b = member(gw, "g-1"), member(gw, "g-2")
    earn(gw, "g-1", 120_000, "p-1")
    earn(gw, "g-2", 90_000, "p-2")
    before = settlement_report(gw.services.engine, gw.services.rules, NOV, "EUR")
    enter_draw(gw.services.ledger, a, draw.id, 3, "e-a")  # 30 points
    enter_draw(gw.services.ledger, b, draw.id, 3, "e-b")  # 30 points
    after = settlement_report(gw.services.engine, gw.services.rules, NOV, "EUR")
    was, now = before.line("grocery"), after.line("grocery")
    assert was is not None and now is not None
    # 60 points redeemed at Kolos Grocery at 0.22 EUR cents each: 13.2 -> 13 (FLOOR).
    # The fee: 2 % of 60 x 0.22 = 0.264 -> 1 cent (CEIL). Issued: 210 points at 0.25 -> 53.
    assert was.figures == Figures(issued_points=210, issued_minor=53)
    assert now.figures == Figures(issued_points=210, issued_minor=53, redeemed_points=60,
                                  redeemed_minor=13, fee_minor=1)
    cells = {(c.origin, c.redeemer): c.points for c in after.matrix}
    assert cells[("grocery", "grocery")] == 60
    assert after.coalition.liability_change_points == 120 + 90 - 60
    assert verify_ledger(gw.services.engine).ok


def test_a_coalition_draw_cannot_sell_entries(gw: Gateway) -> None:
    from gateway.draws.service import create_draw
    from tests.support.draws import grocery_terms

    with pytest.raises(InvalidInput) as refused:
        create_draw(gw.services.engine, gw.services.rules, NOW, None, grocery_terms(gw),
                    "test")
    assert refused.value.field == "pointsPerEntry"


def test_concurrent_purchases_of_entries_respect_the_limit(gw: Gateway) -> None:
    """Four members' apps buy 3 entries each at once for one member (limit 5): exactly one
    purchase goes through, the others are refused, and exactly 30 points left the wallet."""
    from concurrent.futures import ThreadPoolExecutor

    draw = grocery_draw(gw, entries_per_purchase=None, min_spend=None)
    a = member(gw, "g-1")
    earn(gw, "g-1", 200_000, "p-1")  # 200 points

    def buy(n: int) -> str:
        try:
            enter_draw(gw.services.ledger, a, draw.id, 3, f"race-{n}")
        except DrawEntryLimit:
            return "limit"
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(buy, range(4)))
    assert outcomes == ["limit", "limit", "limit", "ok"]
    assert (available(gw, a), entries_of(gw, draw.id, a)) == (170, 3)
    assert verify_ledger(gw.services.engine).ok


def test_a_coalition_draw_from_the_cli(gw: Gateway, tmp_path: Path) -> None:
    """The coalition's draw counts purchases at the grocery and the electronics shop (not the
    fuel station), 1 entry each, 3 per member, two mugs a member may both win."""
    import argparse
    import io
    import json

    from gateway.draws import cli

    clock = gw.services.clock
    assert isinstance(clock, FixedClock)

    def run(*argv: str) -> tuple[int, str]:
        root = argparse.ArgumentParser(prog="gateway")
        out = io.StringIO()
        cli.register(root.add_subparsers(dest="command"), lambda: gw.services, out=out)
        args = root.parse_args(["draws", *argv])
        return args.func(args), out.getvalue()

    code, said = run("create", "--owner", "coalition", "--name", "Coalition mugs",
                     "--opens", NOW.isoformat(), "--closes",
                     (NOW + timedelta(days=3)).isoformat(), "--prize", "Mug=2",
                     "--max-per-member", "3", "--entries-per-purchase", "1",
                     "--partners", "grocery,electronics", "--several-prizes-per-member")
    assert code == 0
    draw_id, _, commitment = said.split()
    a = member(gw, "g-1")
    enrol_customer(gw.services.engine, clock, "fuel", "f-1")
    earn(gw, "g-1", 10_000, "p-1")  # 100.00 UAH at the grocery: 1 entry (no minimum)
    service.earn_points(gw.services.ledger, m.EarnPoints(
        "fuel", "f-1", Money(50_000, "UAH"), "store", "f-p1", "k-f-p1"))  # fuel: no entry
    drain(gw)
    assert entries_of(gw, draw_id, a) == 1
    assert "1 entries from 1 members" in run("show", draw_id)[1]
    clock.advance(timedelta(days=3))
    code, said = run("close", draw_id)
    assert code == 0
    lines = said.splitlines()
    assert lines[0].startswith(f"{draw_id} closed: 1 entries, 1 entrants")
    assert [line.split("\t")[1] for line in lines[2:]] == ["Mug"]  # one ticket, one mug
    assert run("verify", draw_id)[0] == 0
    body = proof(gw.services.engine, draw_id)
    assert body["commitment"] == commitment and body["owner"] == "coalition"
    saved = tmp_path / "proof.json"
    saved.write_text(json.dumps({**body, "entry_list_hash": "00" * 32}))
    code, said = run("verify", "--file", str(saved))
    assert code == 1 and "entry list does not match" in said
    code, _ = run("close", "drw_missing")
    assert code == 2


def test_merged_accounts_are_one_entrant_at_close_capped_at_the_limit(gw: Gateway) -> None:
    from gateway.ledger.member_ops import merge_members

    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw)
    a, b = member(gw, "g-1"), member(gw, "g-2")
    earn(gw, "g-1", 100_000, "p-1")
    earn(gw, "g-1", 100_000, "p-2")  # a: 4 entries
    earn(gw, "g-2", 100_000, "p-3")  # b: 2 entries
    drain(gw)
    merge_members(gw.services.engine, clock, a, b, "test")
    clock.advance(timedelta(days=7))
    closed = close_draw(gw.services.engine, clock.now(), draw.id, EVERY)
    assert [e.entries for e in closed.entrants] == [5]  # 4 + 2, capped at 5
    assert len(closed.winners) == 1


def test_a_return_handled_before_its_earn_still_counts(gw: Gateway) -> None:
    """Review 2: the worker promises at least once, not order. A return handled before its
    earn's event must not leave the earn's entries standing (the purchase no longer
    qualifies), and a later return must net every return of the purchase, not only those
    the draw saw."""
    from gateway.draws import CONSUMER

    draw = grocery_draw(gw)
    c, d = member(gw, "g-3"), member(gw, "g-4")
    earn(gw, "g-3", 80_000, "p-c")  # 800.00 UAH: 2 entries ...
    give_back(gw, "p-c", 40_000, "r-c")  # ... 400.00 left: none
    earn(gw, "g-4", 100_000, "p-d")  # 1,000.00 UAH: 2 entries ...
    give_back(gw, "p-d", 30_000, "r-d1")  # ... 700.00 left: still 2
    with UnitOfWork(gw.services.engine, write=False) as uow:
        events = read_events(uow.conn, limit=10_000, types=sorted(CONSUMER.types))
    for event in reversed(events):  # every return first, then the earns
        CONSUMER.handle(gw.services.engine, event)
    assert (entries_of(gw, draw.id, c), entries_of(gw, draw.id, d)) == (0, 2)
    give_back(gw, "p-d", 30_000, "r-d2")  # 400.00 left now: withdrawn
    drain(gw)
    drain(gw)  # redelivered: nothing changes
    assert (entries_of(gw, draw.id, c), entries_of(gw, draw.id, d)) == (0, 0)


def test_a_member_and_the_owner_read_a_closed_draw_without_its_whole_entry_list(
        gw: Gateway) -> None:
    """Review 2: the viewer's draws and the partner's ``draw(id)`` read a closed draw's winners
    and the member's own frozen row, never every entrant (a large draw has hundreds of
    thousands: that read belongs to the public proof alone)."""
    from sqlalchemy import event

    from gateway.draws.service import member_draws, winners_of

    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw)
    ids = [member(gw, f"g-{n}") for n in range(1, 6)]
    for n in range(1, 6):
        earn(gw, f"g-{n}", 50_000, f"p-{n}")
    drain(gw)
    clock.advance(timedelta(days=7))
    closed = close_draw(gw.services.engine, clock.now(), draw.id, EVERY)
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()))

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        [mine] = member_draws(engine, ids[0], clock.now())
        winners = winners_of(engine, draw.id, "grocery")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert mine.entries == 2 and mine.winners == closed.winners
    assert winners == closed.winners and len(winners) == 3
    whole_list = [s for s in seen if "FROM draw_entrants" in s
                  and "draw_entrants.entrant =" not in s]
    assert whole_list == []


def test_a_return_after_the_close_time_never_withdraws_entries(gw: Gateway) -> None:
    """Only returns occurring before ``closesAt`` count, even when the worker handles an
    earlier return after a later one was recorded (what is left is read from the ledger)."""
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw)
    d = member(gw, "g-4")
    earn(gw, "g-4", 100_000, "p-d")  # 1,000.00 UAH: 2 entries
    give_back(gw, "p-d", 30_000, "r-d1")  # before the close time: 700.00 left, kept
    clock.advance(timedelta(days=7, seconds=1))
    give_back(gw, "p-d", 50_000, "r-d2")  # after it: does not count
    drain(gw)
    assert entries_of(gw, draw.id, d) == 2


def test_two_returns_of_one_purchase_handled_at_once_withdraw_its_entries_once(
        gw: Gateway) -> None:
    """Review 2: two workers handle two returns of one purchase at the same time. Each must
    read the purchase's entries under the member's lock, or both withdraw them and the
    member also loses the entries bought with points (PostgreSQL: the lock is held here
    while both handlers start, so both have read before either writes)."""
    import threading
    import time

    from gateway.draws import CONSUMER
    from gateway.ledger.repository import LedgerRepository

    engine = gw.services.engine
    draw = grocery_draw(gw)
    a = member(gw, "g-1")
    earn(gw, "g-1", 100_000, "p-1")  # 1,000.00 UAH: 2 entries, 100 points
    drain(gw)
    enter_draw(gw.services.ledger, a, draw.id, 3, "buy-3")  # 3 more for 30 points: 5
    give_back(gw, "p-1", 60_000, "r-1")  # 400.00 left: the purchase's 2 are withdrawn
    give_back(gw, "p-1", 10_000, "r-2")
    with UnitOfWork(engine, write=False) as uow:
        returns = read_events(uow.conn, limit=1000, types=["points.returned"])
    assert len(returns) == 2
    errors: list[BaseException] = []

    def handle(event: object) -> None:
        try:
            CONSUMER.handle(engine, event)  # type: ignore[arg-type]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=handle, args=(e,)) for e in returns]
    if engine.dialect.name == "postgresql":
        with UnitOfWork(engine) as uow:
            LedgerRepository(uow.conn).lock_member(a)
            for thread in threads:
                thread.start()
            time.sleep(1.0)  # both handlers have read the purchase's rows and wait here
            uow.commit()
    else:
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert entries_of(gw, draw.id, a) == 3


def test_an_owner_has_at_most_max_open_draws(gw: Gateway) -> None:
    """Review 2: every earn and return is checked against every draw taking entries, so one
    partner cannot make that work grow without end: at most MAX_OPEN_PER_OWNER each."""
    from gateway.draws.service import MAX_OPEN_PER_OWNER, create_draw
    from tests.support.draws import grocery_terms

    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    made = [grocery_draw(gw) for _ in range(MAX_OPEN_PER_OWNER)]
    with pytest.raises(InvalidInput) as refused:
        grocery_draw(gw)
    assert refused.value.field == "opensAt"
    create_draw(gw.services.engine, gw.services.rules, clock.now(), "electronics",
                grocery_terms(gw, min_spend=None), "test")  # another owner's count
    clock.advance(timedelta(days=7))  # past their close time: no longer taking entries
    assert grocery_draw(gw).status == "open"
    assert len(made) == MAX_OPEN_PER_OWNER


def test_a_return_handled_before_its_earn_still_withdraws_the_entries(gw: Gateway) -> None:
    """Review (issue 13): the worker promises no order between events (a batch runs its
    deliveries at once, a failed one is retried later), and a return handled before its earn
    found no entries to withdraw; the earn then gave its 2 entries for good. What is left of
    the purchase is read from the ledger whatever the order (review 2's fix)."""
    from gateway.draws import CONSUMER

    draw = grocery_draw(gw)
    c = member(gw, "g-9")
    earn(gw, "g-9", 80_000, "p-9")  # 800.00 UAH: 2 entries
    give_back(gw, "p-9", 40_000, "r-9")  # 400.00 left: below 500.00, withdrawn
    with UnitOfWork(gw.services.engine, write=False) as uow:
        found = read_events(uow.conn, limit=100, types=sorted(CONSUMER.types))
    (earned,) = [e for e in found if e.type == "points.earned"]
    (returned,) = [e for e in found if e.type == "points.returned"]
    seen = []
    for event in (returned, earned, returned, earned):  # out of order, and redelivered
        CONSUMER.handle(gw.services.engine, event)
        seen.append(entries_of(gw, draw.id, c))
    assert seen == [0, 0, 0, 0]


# --- review 2 of issue 13: bounded totals (draw_totals, decision 033) ----------------------------
def summed(gw: Gateway, draw_id: str) -> tuple[int, int]:
    """The totals recomputed from every entry row (what the listing used to do per request)."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        held_by = [int(n) for n in uow.conn.execute(
            select(func.sum(t.draw_entries.c.entries))
            .where(t.draw_entries.c.draw_id == draw_id)
            .group_by(t.draw_entries.c.member_id)).scalars()]
    return sum(n for n in held_by if n > 0), sum(1 for n in held_by if n > 0)


def listed_totals(gw: Gateway, draw_id: str) -> tuple[int, int]:
    from gateway.draws.service import list_draws

    (shown,) = [s for s in list_draws(gw.services.engine, "grocery") if s.draw.id == draw_id]
    alone = show_draw(gw.services.engine, draw_id, "grocery")
    assert (alone.entries, alone.entrants) == (shown.entries, shown.entrants)
    return shown.entries, shown.entrants


def test_the_totals_row_follows_purchases_returns_points_and_freezes_at_close(
        gw: Gateway) -> None:
    """Purchases (2 each, capped at 5), a return withdrawing a purchase's entries, entries
    bought with points, a redelivered event: the draw's totals row equals the entry rows'
    sums at every step; at close it is the frozen list's (merged accounts as one, capped)."""
    from gateway.ledger.member_ops import merge_members

    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    draw = grocery_draw(gw)
    a, b, c = member(gw, "g-1"), member(gw, "g-2"), member(gw, "g-3")
    assert listed_totals(gw, draw.id) == (0, 0)
    earn(gw, "g-1", 100_000, "p-1")
    earn(gw, "g-1", 100_000, "p-2")  # a: 4
    earn(gw, "g-2", 60_000, "p-3")  # b: 2
    earn(gw, "g-3", 70_000, "p-4")  # c: 2
    drain(gw)
    drain(gw)  # redelivered: nothing moves
    assert listed_totals(gw, draw.id) == summed(gw, draw.id) == (8, 3)
    give_back(gw, "p-4", 30_000, "r-4")  # c: 400.00 left, withdrawn: c holds none
    drain(gw)
    assert listed_totals(gw, draw.id) == summed(gw, draw.id) == (6, 2)
    enter_draw(gw.services.ledger, c, draw.id, 3, "e-c")  # 30 of c's 70 points: 3 entries
    enter_draw(gw.services.ledger, a, draw.id, 1, "e-a")  # a: 5, the limit
    enter_draw(gw.services.ledger, a, draw.id, 1, "e-a")  # a replay: nothing more
    assert listed_totals(gw, draw.id) == summed(gw, draw.id) == (10, 3)
    merge_members(gw.services.engine, clock, a, b, "test")  # a (5) + b (2): one entrant, 5
    assert listed_totals(gw, draw.id) == (10, 3)  # before close: accounts as they entered
    clock.advance(timedelta(days=7))
    closed = close_draw(gw.services.engine, clock.now(), draw.id, EVERY)
    assert sorted(e.entries for e in closed.entrants) == [3, 5]
    assert listed_totals(gw, draw.id) == (8, 2)  # frozen: the published list's figures
    give_back(gw, "p-1", 100_000, "r-1")
    drain(gw)
    assert listed_totals(gw, draw.id) == (8, 2)


def test_the_draw_list_reads_no_entry_rows_whatever_their_number(gw: Gateway) -> None:
    """The partner's draw list and ``draw(id)`` used to sum every entry row of each listed
    draw on each request. Now they read the draw and its totals row (primary keys): one
    statement for the page, none touching draw_entries, however many entries there are."""
    from sqlalchemy import event

    from gateway.draws.service import list_draws

    draws_made = [grocery_draw(gw, name=f"Draw {n}") for n in range(3)]
    for n in range(1, 7):
        member(gw, f"g-{n}")
        earn(gw, f"g-{n}", 100_000, f"p-{n}")
    drain(gw)
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()))

    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        page = list_draws(engine, "grocery")
        one = show_draw(engine, draws_made[0].id, "grocery")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [(s.entries, s.entrants) for s in page] == [(12, 6)] * 3
    assert (one.entries, one.entrants) == (12, 6)
    assert [s for s in seen if "draw_entries" in s] == []
    listing = [s for s in seen if "draw_totals" in s]
    assert len(listing) == 2  # the page's one statement, and the one draw's


def test_entries_handled_at_once_for_many_members_keep_the_totals_exact(gw: Gateway) -> None:
    """Eight members' purchases, each event handled twice, sixteen consumers at once: they
    queue on the draw's totals row and it ends equal to the entry rows' sums (16 entries, 8
    entrants), with every consumer done (no deadlock, nothing lost)."""
    import threading

    from gateway.draws import CONSUMER

    draw = grocery_draw(gw)
    for n in range(1, 9):
        member(gw, f"g-{n}")
        earn(gw, f"g-{n}", 60_000, f"p-{n}")
    with UnitOfWork(gw.services.engine, write=False) as uow:
        found = read_events(uow.conn, limit=100, types=["points.earned"])
    assert len(found) == 8
    barrier = threading.Barrier(16)
    failures: list[BaseException] = []

    def work(event: object) -> None:
        barrier.wait()
        try:
            CONSUMER.handle(gw.services.engine, event)  # type: ignore[arg-type]
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(e,)) for e in (*found, *found)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert listed_totals(gw, draw.id) == summed(gw, draw.id) == (16, 8)
