"""A partner's history of its customer after a merge (issue 10, round 2): operations the
partner recorded under an account since merged into the member (transitively) stay in that
partner's history; another partner's operations never show, nor does the merge itself. Before
the fix, the partner lost every operation recorded before the merge under the absorbed account."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.ledger import model as m
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.history import member_history
from gateway.ledger.member_ops import merge_members
from tests.support.harness import NOW, make_gateway
from tests.support.members import link_with_code


def earn(gw: Gateway, clock: FixedClock, partner: str, customer: str, purchase: str,
         amount: Money) -> None:
    clock.advance(timedelta(minutes=1))
    service.earn_points(gw.services.ledger, m.EarnPoints(partner, customer, amount, "store",
                                                         purchase, f"k-{purchase}"))


def history(gw: Gateway, partner: str, member_id: str) -> list[tuple[str, str | None, int]]:
    page = member_history(gw.services.engine, partner, member_id, 100, None)
    return [(v.kind, v.purchase_id, v.points) for v in page.items]


def test_a_partner_keeps_its_own_history_of_a_merged_account(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    engine = gw.services.engine
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = enrol_customer(engine, clock, "grocery", "g-b").member_id
    c = enrol_customer(engine, clock, "fuel", "f-c").member_id
    link_with_code(engine, clock, "electronics", "e-b", b)
    earn(gw, clock, "grocery", "g-a", "ga-1", Money(120_000, "UAH"))
    earn(gw, clock, "grocery", "g-b", "gb-1", Money(50_000, "UAH"))
    earn(gw, clock, "electronics", "e-b", "eb-1", Money(7_000, "EUR"))
    earn(gw, clock, "fuel", "f-c", "fc-1", Money(30_000, "UAH"))
    merge_members(engine, clock, a, b, "test")
    earn(gw, clock, "grocery", "g-a", "ga-2", Money(10_000, "UAH"))
    assert history(gw, "grocery", a) == [("earn", "ga-2", 10), ("earn", "gb-1", 50),
                                         ("earn", "ga-1", 120)]
    assert history(gw, "electronics", a) == [("earn", "eb-1", 70)]
    assert history(gw, "fuel", a) == []
    # Transitively: C absorbs A (which absorbed B); each partner sees only its own lines.
    merge_members(engine, clock, c, a, "test")
    assert history(gw, "grocery", c) == [("earn", "ga-2", 10), ("earn", "gb-1", 50),
                                         ("earn", "ga-1", 120)]
    assert history(gw, "electronics", c) == [("earn", "eb-1", 70)]
    assert history(gw, "fuel", c) == [("earn", "fc-1", 15)]
    # The absorbed account's own view is unchanged: nothing was merged into it from C.
    assert history(gw, "grocery", b) == [("earn", "gb-1", 50)]


def test_history_pages_through_merged_accounts(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    engine = gw.services.engine
    a = enrol_customer(engine, clock, "grocery", "g-a").member_id
    b = enrol_customer(engine, clock, "grocery", "g-b").member_id
    for i in range(3):
        earn(gw, clock, "grocery", "g-b", f"b-{i}", Money(10_000 * (i + 1), "UAH"))
        earn(gw, clock, "grocery", "g-a", f"a-{i}", Money(1_000 * (i + 1) * 10, "UAH"))
    merge_members(engine, clock, a, b, "test")
    first = member_history(engine, "grocery", a, 4, None)
    assert [v.purchase_id for v in first.items] == ["a-2", "b-2", "a-1", "b-1"]
    assert first.has_next
    rest = member_history(engine, "grocery", a, 4, first.end_cursor)
    assert [v.purchase_id for v in rest.items] == ["a-0", "b-0"]
    assert not rest.has_next
