"""Property: for random operation sets, every report balances to the minor unit, and the
origin → redeemer matrix equals each partner's redeemed points (net of refunds), which in turn
equal what the ledger's transfers into and out of its redeemed account say.

Operations go through the real ledger services (earn, redeem, authorise/capture/void, returns,
expiry of holds and lots, late earns), with periods closed along the way; bonus points funded by
the earning partner or by the coalition, and returns of them, are posted as decision 020 lays
them out (tests/support/bonus_postings.py, through the ledger's apply step). Every funder's
promotion line then matches the transfers out of and back into its account."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.core.clock import FixedClock
from gateway.core.errors import DomainError
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.jobs import run_expiry
from gateway.ledger import holds, service
from gateway.ledger import model as m
from gateway.ledger.enrolment import enrol_customer
from gateway.promotions import funding
from gateway.settlement.exposure import set_terms, top_up
from gateway.settlement.model import Period, Report
from gateway.settlement.service import close_period, settlement_report
from tests.settlement.scenario import at, gateway_at
from tests.support.bonus_postings import post_bonus, return_bonus
from tests.support.members import link_with_code

PARTNERS = {"grocery": ("UAH", 1000), "electronics": ("EUR", 100), "fuel": ("UAH", 2000),
            "charity": ("UAH", 10)}
EARNERS = ("grocery", "electronics", "fuel")
step = st.one_of(
    st.tuples(st.just("earn"), st.sampled_from(EARNERS), st.integers(50, 600)),
    st.tuples(st.just("redeem"), st.sampled_from(list(PARTNERS)), st.integers(40, 300)),
    st.tuples(st.just("authorise"), st.sampled_from(list(PARTNERS)), st.integers(40, 300)),
    st.tuples(st.just("capture"), st.just(0), st.integers(0, 150)),  # the latest hold
    st.tuples(st.just("void"), st.just(0), st.just(0)),
    st.tuples(st.just("return"), st.integers(0, 30), st.integers(1, 4)),
    st.tuples(st.just("late"), st.sampled_from(EARNERS), st.integers(1, 400)),
    st.tuples(st.just("wait"), st.integers(0, 12), st.just(0)),
    st.tuples(st.just("close"), st.just(""), st.just(0)),
    st.tuples(st.just("bonus"), st.sampled_from([*EARNERS, "coalition"]), st.integers(1, 90)),
    st.tuples(st.just("unbonus"), st.integers(0, 30), st.integers(1, 90)),
)


def customer(partner: str) -> str:
    return f"{partner}-c"


EVERYTHING = [("earn", "grocery", 600), ("earn", "electronics", 600),
              ("authorise", "electronics", 200), ("capture", 0, 150), ("redeem", "charity", 60),
              ("authorise", "grocery", 100), ("void", 0, 0), ("close", "", 0),
              ("late", "fuel", 300), ("return", 0, 2), ("return", 1, 3), ("redeem", "fuel", 50),
              ("authorise", "fuel", 60), ("wait", 12, 0), ("close", "", 0),
              ("redeem", "electronics", 100), ("late", "grocery", 100), ("return", 4, 1)]
PROMOTIONS = [("earn", "electronics", 333), ("bonus", "electronics", 50),
              ("bonus", "electronics", 90), ("bonus", "electronics", 90),  # refused: line 150
              ("bonus", "coalition", 30), ("bonus", "coalition", 20),  # past its 40: alerted
              ("earn", "grocery", 70), ("bonus", "grocery", 7),
              ("redeem", "fuel", 120), ("close", "", 0), ("unbonus", 0, 20), ("unbonus", 1, 10),
              ("unbonus", 2, 3), ("bonus", "coalition", 1), ("wait", 12, 0), ("close", "", 0)]


@example(EVERYTHING)
@example(PROMOTIONS)
@example([*EVERYTHING[:5], ("close", "", 0), ("authorise", "grocery", 300), ("capture", 0, 0),
          ("return", 0, 1), ("return", 1, 1)])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=35))
def test_every_report_balances(steps: list[tuple[str, object, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(at(2))
        gw = gateway_at(Path(tmp), clock)
        ledger, engine = gw.services.ledger, gw.services.engine
        member = enrol_customer(engine, clock, "grocery", customer("grocery")).member_id
        for partner in PARTNERS:
            if partner != "grocery":
                link_with_code(engine, clock, partner, customer(partner), member)
        # Funding (docs/funding.md): the shop on a credit line, the coalition prepaid with the
        # alert policy; the grocery and fuel have no terms (unlimited).
        set_terms(engine, clock, "electronics", mode="credit", policy="refuse",
                  limit_points=150, actor="prop")
        set_terms(engine, clock, "coalition", mode="prepaid", policy="alert", limit_points=None,
                  actor="prop")
        top_up(engine, clock, "coalition", 40, actor="prop")
        purchases: list[tuple[str, int, str]] = []
        hold_ids: list[tuple[str, str]] = []
        awards: list[tuple[str, str, str, int]] = []  # (partner, award op, funder, points)
        weeks = [Period(at(1) + timedelta(weeks=i), at(1) + timedelta(weeks=i + 1))
                 for i in range(12)]
        closed = 0
        done: list[str] = []
        for n, (kind, what, size) in enumerate(steps):
            key = f"k{n}"
            try:
                if kind in ("earn", "late"):
                    partner = str(what)
                    currency, unit = PARTNERS[partner]
                    occurred = None
                    if kind == "late" and closed:
                        occurred = weeks[closed - 1].start + timedelta(hours=1)
                    service.earn_points(ledger, m.EarnPoints(
                        partner, customer(partner), Money(size * unit, currency), "store",
                        f"p{n}", key, occurred_at=occurred))
                    purchases.append((partner, size * unit, f"p{n}"))
                elif kind in ("redeem", "authorise"):
                    partner = str(what)
                    currency, _ = PARTNERS[partner]
                    purchase = next((p for p in reversed(purchases) if p[0] == partner), None)
                    cmd = m.RedeemPoints(partner, customer(partner), size,
                                         Money(10**9, currency), key,
                                         purchase_id=purchase[2] if purchase else None)
                    if kind == "redeem":
                        service.redeem_points(ledger, cmd)
                    else:
                        hold_ids.append((partner, holds.authorise_redemption(ledger,
                                                                             cmd).hold_id))
                        clock.advance(timedelta(seconds=30))  # a capture may follow in time
                elif kind in ("capture", "void") and hold_ids:
                    partner, hold = hold_ids[-1]
                    if kind == "capture":
                        holds.capture_redemption(ledger, m.CaptureRedemption(
                            partner, hold, key, size or None))
                    else:
                        holds.void_redemption(ledger, m.VoidRedemption(partner, hold, key))
                    done.append(kind)
                elif kind == "return" and purchases:
                    partner, amount, purchase = purchases[int(str(what)) % len(purchases)]
                    service.return_purchase(ledger, m.ReturnPurchase(
                        partner, purchase, Money(max(1, amount // size),
                                                 PARTNERS[partner][0]), key))
                elif kind == "bonus" and purchases:
                    funder = str(what)
                    partner = funder if funder != "coalition" else purchases[-1][0]
                    awards.append((partner, post_bonus(ledger, partner, member, funder, size,
                                                       key, charge=True), funder, size))
                elif kind == "unbonus" and awards:
                    # A return reverses at most what is left of the award (the real return
                    # planner's rule): the same award returned twice never gives back more.
                    index = int(str(what)) % len(awards)
                    partner, award, funder, points = awards[index]
                    taken = return_bonus(ledger, partner, member, award, funder,
                                         min(size, points), key, release=True)
                    awards[index] = (partner, award, funder, points - taken)
                elif kind == "wait":
                    clock.advance(timedelta(days=size, minutes=17))
                    run_expiry(ledger)
                elif kind == "close":
                    clock.advance(timedelta(days=7))
                    run_expiry(ledger)
                    while closed < len(weeks) and weeks[closed].end <= clock.now():
                        close_period(engine, gw.services.rules, clock, weeks[closed], "EUR",
                                     actor="prop")
                        closed += 1
            except DomainError as exc:
                done.append(f"refused {kind} {exc.code}")  # changes nothing; go on
            clock.advance(timedelta(minutes=1))
        event(f"bonus postings: {min(len(awards), 2)}")
        event(f"captures: {min(done.count('capture'), 2)}")
        for refused in sorted({d for d in done if d.startswith("refused")}):
            event(refused)
        event(f"closes with late earns: {min(done.count('late'), 1) * closed > 0}")
        clock.advance(timedelta(days=400))
        run_expiry(ledger)  # everything left expires: breakage on every origin
        whole = Period(at(1), clock.now() + timedelta(days=1))
        for period in [*weeks, whole]:
            check(gw, settlement_report(engine, gw.services.rules, period, "EUR"))
        # The funding counters, kept in the awarding transactions, agree with settlement's
        # promotion lines over the whole history; a refuse funder never went past its line.
        lines = {f.funder: f for f in settlement_report(engine, gw.services.rules, whole,
                                                        "EUR").funders()}
        with engine.connect() as conn:
            for funder in ("electronics", "coalition"):
                kept = funding.read(conn, funder)
                assert kept is not None
                line = lines.get(funder)
                assert (kept.issued_points, kept.reversed_points) == (
                    (line.points, line.returned_points) if line else (0, 0))
            shop = funding.read(conn, "electronics")
            assert shop is not None and shop.left_points >= 0 and shop.alerts == 0


def check(gw, report: Report) -> None:  # type: ignore[no-untyped-def]
    assert sum(p.net_minor for p in report.partners) + report.coalition.net_minor == 0
    for line in report.partners:
        figures = [line.figures, *(a.figures for a in line.adjustments)]
        redeemed = sum(f.redeemed_points - f.redeem_refunds_points for f in figures)
        minor = sum(f.redeemed_minor - f.redeem_refunds_minor for f in figures)
        cells = [c for c in report.matrix if c.redeemer == line.partner_id]
        assert sum(c.points for c in cells) == redeemed == redeemed_by_transfers(
            gw, line.partner_id, report.period)
        assert sum(c.minor for c in cells) == minor
    funders = {f.funder: f for f in report.funders()}
    for funder in [*EARNERS, "coalition"]:
        issued, returned = funded_by_transfers(gw, funder, report.period)
        line = funders.get(funder)
        assert (line.points, line.returned_points) == (issued, returned) if line else (
            issued, returned) == (0, 0)
        if line is not None and funder != "coalition":
            f = report.line(funder)
            assert f is not None and f.all_figures.promotion_net_minor == line.net_minor


def funded_by_transfers(gw, funder: str, period: Period) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Points out of (issued) and back into (reversed) the funder's account in ``period``."""
    code = "coalition:bonus" if funder == "coalition" else f"partner:{funder}:promotions"
    with gw.services.engine.connect() as conn:
        account = conn.execute(select(t.accounts.c.id).where(t.accounts.c.code == code)).scalar()
        ops = t.operations

        def total(column):  # type: ignore[no-untyped-def]
            return int(conn.execute(
                select(func.coalesce(func.sum(t.transfers.c.amount), 0))
                .select_from(t.transfers.join(ops, ops.c.id == t.transfers.c.operation_id))
                .where(column == account, ops.c.recorded_at >= period.start,
                       ops.c.recorded_at < period.end)).scalar_one())

        return total(t.transfers.c.debit_account_id), total(t.transfers.c.credit_account_id)


def redeemed_by_transfers(gw, partner: str, period: Period) -> int:  # type: ignore[no-untyped-def]
    code = f"partner:{partner}:redeemed"
    with gw.services.engine.connect() as conn:
        account = conn.execute(select(t.accounts.c.id).where(t.accounts.c.code == code)).scalar()

        def total(column):  # type: ignore[no-untyped-def]
            return int(conn.execute(
                select(func.coalesce(func.sum(t.transfers.c.amount), 0))
                .where(column == account, t.transfers.c.recorded_at >= period.start,
                       t.transfers.c.recorded_at < period.end)).scalar_one())

        return total(t.transfers.c.credit_account_id) - total(t.transfers.c.debit_account_id)
