"""Member notifications (decision 031) on this run's real database, with a real SMTP server in
process receiving the emails. The ledger's events are fed to the notifications consumer as the
worker would (``drain``), each any number of times.

Numbers: grocery earns 1 point per 10.00 UAH (floor), lots expire 365 days after the earn; Gold
needs 5,000 qualifying points. Ada signed up online (ada@example.com), so she has an address."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.enrolment import sign_up
from gateway.ledger.model import EarnPoints, ReturnPurchase
from gateway.ledger.service import earn_points, return_purchase
from gateway.members.viewer import set_consent
from gateway.notifications import jobs, mail, store
from gateway.notifications.consumer import make_consumer
from gateway.outbox import Consumer, read_events
from gateway.promotions import segments
from gateway.promotions.model import InSegment
from gateway.settings import MailSettings
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import NOW, make_gateway
from tests.support.members import link_with_code
from tests.support.smtp import Inbox, smtp_server

ADA = "ada@example.com"


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, clock=FixedClock(NOW))


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, MailSettings]]:
    with smtp_server() as (inbox, port):
        yield inbox, MailSettings(smtp_host="127.0.0.1", smtp_port=port,
                                  from_address="Rewards <rewards@coalition.example>")


def clock_of(gw: Gateway) -> FixedClock:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    return clock


def consumer(gw: Gateway) -> Consumer:
    return make_consumer(gw.services.clock, lambda: gw.services.ledger.tiers)


def drain(gw: Gateway, handler: Consumer, times: int = 1) -> int:
    """Feed every committed event the consumer wants to it, ``times`` times over (the worker's
    at-least-once delivery). Returns the events handled per pass."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        wanted = read_events(uow.conn, limit=10_000, types=sorted(handler.types))
    for _ in range(times):
        for event in wanted:
            handler.handle(gw.services.engine, event)
    return len(wanted)


def member(gw: Gateway, email: str = ADA, customer: str = "c-1",
           born: date | None = None) -> str:
    s = gw.services
    made = sign_up(s.engine, s.clock, email, "correct horse battery", birth_date=born)
    link_with_code(s.engine, s.clock, "grocery", customer, made.member_id)
    return made.member_id


def earn(gw: Gateway, customer: str, minor: int, key: str) -> None:
    earn_points(gw.services.ledger, EarnPoints("grocery", customer, Money(minor, "UAH"),
                                               "store", key, key))


def consent(gw: Gateway, member_id: str, purpose: str, partner: str | None,
            granted: bool = True) -> None:
    set_consent(gw.services.engine, gw.services.clock, member_id, purpose, partner, granted,
                "app")


def feed(gw: Gateway, member_id: str) -> list[tuple[str, str]]:
    page = store.feed(gw.services.engine, member_id, 100, None)
    return [(n.kind, n.title) for n in page.items]


def count(gw: Gateway, table: t.Table) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def send(gw: Gateway, settings: MailSettings) -> mail.SendRun:
    return mail.send_pending(gw.services.engine, gw.services.clock, settings)


def test_an_earn_and_its_return_notify_once_however_often_delivered(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    inbox, settings = smtp
    ada = member(gw)
    earn(gw, "c-1", 120_000, "p-1")
    return_purchase(gw.services.ledger, ReturnPurchase("grocery", "p-1", Money(50_000, "UAH"),
                                                       "r-1"))
    assert drain(gw, consumer(gw), times=3) == 2  # the earn and the return, each 3 times
    assert feed(gw, ada) == [
        ("points_returned", "50 points taken back after a return at Kolos Grocery"),
        ("points_earned", "You earned 120 points at Kolos Grocery")]
    assert count(gw, t.notifications) == 2 and count(gw, t.notification_emails) == 2
    assert send(gw, settings) == mail.SendRun(sent=2, retried=0, failed=0)
    assert inbox.subjects(ADA) == ["You earned 120 points at Kolos Grocery",
                                   "50 points taken back after a return at Kolos Grocery"]
    message = inbox.to(ADA)[0]
    assert message["From"] == "Rewards <rewards@coalition.example>"
    assert "120 points from your purchase at Kolos Grocery" in message.get_payload()
    assert send(gw, settings) == mail.SendRun(sent=0, retried=0, failed=0)  # nothing twice
    assert len(inbox.messages) == 2


def test_marketing_needs_consent_transactional_does_not(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    inbox, settings = smtp
    clock = clock_of(gw)
    today = NOW.date()
    ada = member(gw, born=date(1990, today.month, today.day))
    bob = member(gw, "bob@example.com", "c-2", born=date(1985, today.month, today.day))
    consent(gw, ada, "coalition_marketing", None)
    assert jobs.birthdays(gw.services.engine, clock) == jobs.JobRun(scanned=2, notified=1)
    assert jobs.birthdays(gw.services.engine, clock).notified == 0  # once a year
    assert feed(gw, ada) == [("birthday", "Happy birthday!")]
    assert feed(gw, bob) == []  # no consent: no feed item, no email
    earn(gw, "c-2", 10_000, "p-b")
    drain(gw, consumer(gw))
    assert feed(gw, bob) == [("points_earned", "You earned 10 points at Kolos Grocery")]
    assert send(gw, settings).sent == 2
    assert inbox.subjects(ADA) == ["Happy birthday!"]
    assert inbox.subjects("bob@example.com") == ["You earned 10 points at Kolos Grocery"]
    # Withdrawn: next year's birthday tells nobody.
    consent(gw, ada, "coalition_marketing", None, granted=False)
    clock.set(NOW.replace(year=NOW.year + 1))
    assert jobs.birthdays(gw.services.engine, clock).notified == 0
    assert [k for k, _ in feed(gw, ada)] == ["birthday"]


def test_a_personal_offer_reaches_consenting_segment_members_once(gw: Gateway) -> None:
    s = gw.services
    ada, bob, cy = (member(gw), member(gw, "bob@example.com", "c-2"),
                    member(gw, "cy@example.com", "c-3"))
    for who, customer in ((ada, "c-1"), (bob, "c-2"), (cy, "c-3")):
        consent(gw, who, "purchase_history", None)
        earn(gw, customer, 20_000, f"p-{customer}")
    consent(gw, ada, "coalition_marketing", None)
    consent(gw, ada, "marketing", "grocery")
    consent(gw, bob, "coalition_marketing", None)  # but not grocery's marketing
    segments.define(s.engine, "grocery", "regulars", "Regulars",
                    (segments.Clause("grocery", 30, 1),), actor="test", now=NOW)
    assert segments.refresh(s.engine, NOW).counts == {"grocery:regulars": 3}
    offer = replace(bonus_campaign("regulars-bonus", 50),
                    audience=(InSegment("grocery:regulars"),),
                    description="50 bonus points on your next shop.")
    publish(gw, offer)
    drain(gw, consumer(gw), times=2)
    assert [k for k, _ in feed(gw, ada)] == ["offer_available", "points_earned"]
    assert feed(gw, ada)[0][1] == "A new offer for you: regulars-bonus bonus"
    assert [k for k, _ in feed(gw, bob)] == ["points_earned"]
    assert [k for k, _ in feed(gw, cy)] == ["points_earned"]
    # A second version of the campaign tells nobody again.
    publish(gw, replace(offer, version=0))
    drain(gw, consumer(gw))
    assert [k for k, _ in feed(gw, ada)].count("offer_available") == 1


def test_points_expiring_in_30_and_7_days_told_once_each(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    inbox, settings = smtp
    clock, engine = clock_of(gw), gw.services.engine
    ada = member(gw)
    earn(gw, "c-1", 120_000, "p-1")  # 120 points, expiring 365 days from NOW
    clock.advance(timedelta(hours=1))
    earn(gw, "c-1", 30_000, "p-2")  # 30 more, expiring the same day
    expiry_day = (NOW + timedelta(days=365)).date()
    clock.set(NOW + timedelta(days=300))
    assert jobs.expiring(engine, clock, 30).notified == 0  # 65 days away: nothing yet
    clock.set(NOW + timedelta(days=336))  # 29 days before
    assert jobs.expiring(engine, clock, 30) == jobs.JobRun(scanned=2, notified=1)
    assert jobs.expiring(engine, clock, 7).notified == 0
    clock.advance(timedelta(days=1))
    assert jobs.expiring(engine, clock, 30).notified == 0  # never twice in a window
    clock.set(NOW + timedelta(days=359))  # 6 days before
    assert jobs.expiring(engine, clock, 7).notified == 1
    assert jobs.expiring(engine, clock, 7).notified == 0
    assert jobs.expiring(engine, clock, 30).notified == 0
    assert feed(gw, ada) == [
        ("points_expiring_7", f"150 points expire on {expiry_day.isoformat()}"),
        ("points_expiring_30", f"150 points expire on {expiry_day.isoformat()}")]
    assert send(gw, settings).sent == 2
    assert inbox.subjects(ADA) == [f"150 points expire on {expiry_day.isoformat()}"] * 2


def test_tier_change_after_an_earn_that_crosses_gold_and_a_return_that_drops_it(
        gw: Gateway) -> None:
    ada = member(gw)
    handler = consumer(gw)
    earn(gw, "c-1", 400_000, "p-1")  # 400 qualifying points: Silver still
    drain(gw, handler)
    assert [k for k, _ in feed(gw, ada)] == ["points_earned"]
    earn(gw, "c-1", 4_700_000, "p-2")  # 470 more: 5,100, Gold
    drain(gw, handler, times=2)  # (every event again: the worker's redelivery)
    # Told once, by whichever handling first saw the member at Gold (the tier is read when
    # handling, so the redelivered first earn may be the one).
    assert sorted(feed(gw, ada)) == [("points_earned", "You earned 400 points at Kolos Grocery"),
                                     ("points_earned", "You earned 4700 points at Kolos Grocery"),
                                     ("tier_changed", "Welcome to Gold!")]
    return_purchase(gw.services.ledger, ReturnPurchase("grocery", "p-2", Money(200_000, "UAH"),
                                                       "r-1"))  # 200 points back: 4,900
    drain(gw, handler, times=2)
    kinds = [k for k, _ in feed(gw, ada)]
    assert kinds.count("tier_changed") == 2
    assert [title for kind, title in feed(gw, ada) if kind == "tier_changed"] == [
        "Your tier is now Silver", "Welcome to Gold!"]
    assert ("points_returned", "200 points taken back after a return at Kolos Grocery") in feed(
        gw, ada)
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(t.notification_tiers.c.tier_id)).scalar_one() == "silver"


def test_a_relay_that_refuses_is_retried_and_email_off_stops_emails(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    inbox, settings = smtp
    clock = clock_of(gw)
    ada = member(gw)
    earn(gw, "c-1", 120_000, "p-1")
    drain(gw, consumer(gw))
    inbox.refuse = 1
    assert send(gw, settings) == mail.SendRun(sent=0, retried=1, failed=0)
    assert send(gw, settings).sent == 0  # not due yet: one minute back-off
    clock.advance(timedelta(minutes=1))
    assert send(gw, settings).sent == 1
    assert inbox.subjects(ADA) == ["You earned 120 points at Kolos Grocery"]
    store.set_email(gw.services.engine, clock, ada, False)
    earn(gw, "c-1", 10_000, "p-2")
    drain(gw, consumer(gw))
    assert send(gw, settings).sent == 0
    assert len(feed(gw, ada)) == 2 and len(inbox.messages) == 1  # the feed still has it


def test_the_cli_runs_the_jobs_and_writes_the_emails_to_the_mail_folder(
        gw: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import email
    import io
    from dataclasses import replace
    from types import SimpleNamespace

    from gateway.notifications import cli

    clock = clock_of(gw)
    ada = member(gw, born=date(1990, 11, 23))
    consent(gw, ada, "coalition_marketing", None)
    earn(gw, "c-1", 120_000, "p-1")
    drain(gw, consumer(gw))
    folder = tmp_path / "mail"
    context = SimpleNamespace(engine=gw.services.engine, clock=clock, settings=replace(
        gw.services.settings, mail=MailSettings(mail_dir=folder)))
    out = io.StringIO()
    root = argparse.ArgumentParser(prog="gateway")
    cli.register(root.add_subparsers(dest="command", required=True), lambda: context, out=out)

    def run(*argv: str) -> list[str]:
        out.seek(0)
        out.truncate()
        args = root.parse_args(["notify", *argv])
        assert args.func(args) == 0
        return out.getvalue().splitlines()

    assert run("birthdays", "--batch", "1") == ["birthdays: 1 members scanned, 1 greeted"]
    clock.set(NOW + timedelta(days=340))
    assert run("expiring") == ["expiring in 30 days: 1 lots scanned, 1 members notified",
                               "expiring in 7 days: 0 lots scanned, 0 members notified"]
    assert run("expiring") == ["expiring in 30 days: 0 lots scanned, 0 members notified",
                               "expiring in 7 days: 0 lots scanned, 0 members notified"]
    assert run("send") == ["emails sent: 3, to retry: 0, failed: 0"]
    assert "birthdays: 1 scanned, 1 notified" in capsys.readouterr().err  # progress
    files = sorted(folder.glob("*.eml"))
    subjects = [str(email.message_from_bytes(f.read_bytes())["Subject"]) for f in files]
    assert subjects == ["You earned 120 points at Kolos Grocery", "Happy birthday!",
                        "120 points expire on 2027-11-23"]
    assert all(str(email.message_from_bytes(f.read_bytes())["To"]) == ADA for f in files)
    bad = root.parse_args(["notify", "send", "--batch", "0"])
    assert bad.func(bad) == 2
    assert "error: batch must be at least 1 (field batch)" in capsys.readouterr().err


def test_a_personal_coupon_is_an_offer_with_consent_and_withdrawing_stops_it(
        gw: Gateway) -> None:
    from gateway.promotions.coupon_issue import CouponTerms, issue_coupons
    from gateway.promotions.model import CouponPresented

    s = gw.services
    ada, bob = member(gw), member(gw, "bob@example.com", "c-2")
    for who in (ada, bob):
        consent(gw, who, "coalition_marketing", None)
    consent(gw, ada, "marketing", "grocery")  # bob: not grocery's marketing
    publish(gw, replace(bonus_campaign("grocery:spring", 200), conditions=(CouponPresented(),),
                        description="200 bonus points with your coupon."))

    def coupon(customer: str) -> None:
        issue_coupons(s.engine, "grocery", CouponTerms("spring"), 1, customer_id=customer,
                      now=s.clock.now(), actor="test")

    coupon("c-1")
    coupon("c-2")
    drain(gw, consumer(gw), times=2)
    [offer] = store.feed(s.engine, ada, 10, None).items
    assert (offer.kind, offer.title) == ("offer_available",
                                         "A new offer for you: grocery:spring bonus")
    assert offer.body == ("200 bonus points with your coupon. A personal coupon for it is "
                          "waiting for you at the till.")
    assert offer.data["coupon"] is True and offer.data["partner_id"] == "grocery"
    assert feed(gw, bob) == []
    consent(gw, ada, "marketing", "grocery", granted=False)
    coupon("c-1")
    drain(gw, consumer(gw))
    assert [k for k, _ in feed(gw, ada)] == ["offer_available"]  # still the one


def test_erasure_deletes_the_feed_and_its_queued_emails(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    from gateway.ledger.erasure import erase_member

    inbox, settings = smtp
    ada = member(gw)
    bob = member(gw, "bob@example.com", "c-2")
    earn(gw, "c-1", 120_000, "p-1")
    earn(gw, "c-2", 10_000, "p-2")
    drain(gw, consumer(gw))
    store.set_email(gw.services.engine, gw.services.clock, ada, True)
    assert count(gw, t.notifications) == 2 and count(gw, t.notification_emails) == 2
    erase_member(gw.services.ledger, ada, "FORFEIT", None, f"member:{ada}")
    assert count(gw, t.notifications) == 1 and count(gw, t.notification_emails) == 1
    assert count(gw, t.notification_preferences) == 0
    assert feed(gw, ada) == [] and len(feed(gw, bob)) == 1
    drain(gw, consumer(gw))  # redelivered: an erased member is never notified again
    assert count(gw, t.notifications) == 1 and count(gw, t.notification_tiers) == 1  # bob's
    assert send(gw, settings).sent == 1
    assert [str(m["To"]) for m in inbox.messages] == ["bob@example.com"]


def test_the_guide_worked_example(gw: Gateway) -> None:
    """docs/notifications.md, "Worked example", steps 1, 3 and 4, with its numbers."""
    clock, engine = clock_of(gw), gw.services.engine
    ada = member(gw, born=date(1990, 11, 23))
    earn(gw, "c-1", 120_000, "p-1")
    return_purchase(gw.services.ledger, ReturnPurchase("grocery", "p-1", Money(50_000, "UAH"),
                                                       "r-1"))
    clock.advance(timedelta(hours=1))
    earn(gw, "c-1", 30_000, "p-2")
    drain(gw, consumer(gw))
    assert feed(gw, ada) == [
        ("points_earned", "You earned 30 points at Kolos Grocery"),
        ("points_returned", "50 points taken back after a return at Kolos Grocery"),
        ("points_earned", "You earned 120 points at Kolos Grocery")]
    assert jobs.birthdays(engine, clock).notified == 0  # step 4: no coalition_marketing
    clock.set(datetime(2027, 10, 25, 9, 0, tzinfo=UTC))
    assert jobs.expiring(engine, clock, 30).notified == 1
    clock.set(datetime(2027, 10, 26, 9, 0, tzinfo=UTC))
    assert jobs.expiring(engine, clock, 30).notified == 0
    clock.set(datetime(2027, 11, 17, 9, 0, tzinfo=UTC))
    assert jobs.expiring(engine, clock, 7).notified == 1
    assert feed(gw, ada)[:2] == [("points_expiring_7", "100 points expire on 2027-11-23"),
                                 ("points_expiring_30", "100 points expire on 2027-11-23")]


def test_concurrent_handlers_and_senders_tell_and_send_once(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    """Two workers handle a member's two earns at the same moment (both see Gold): one tier
    change is told. Then four senders run at once: every email goes out exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    inbox, settings = smtp
    ada = member(gw)
    earn(gw, "c-1", 2_600_000, "p-1")
    earn(gw, "c-1", 2_600_000, "p-2")  # 2,600 + 2,600 = 5,200: Gold
    handler = consumer(gw)
    with UnitOfWork(gw.services.engine, write=False) as uow:
        events = read_events(uow.conn, limit=100, types=["points.earned"])
    assert len(events) == 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda e: handler.handle(gw.services.engine, e), events * 3))
    kinds = sorted(k for k, _ in feed(gw, ada))
    assert kinds == ["points_earned", "points_earned", "tier_changed"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: send(gw, settings), range(4)))
    assert sum(r.sent for r in runs) == 3 and len(inbox.messages) == 3
    assert sorted(inbox.subjects(ADA)) == ["Welcome to Gold!",
                                           "You earned 2600 points at Kolos Grocery",
                                           "You earned 2600 points at Kolos Grocery"]


def test_a_queued_marketing_email_is_not_sent_once_its_consent_is_withdrawn(
        gw: Gateway, smtp: tuple[Inbox, MailSettings]) -> None:
    """Review 2: the consent is checked again when the email goes out, not only when the
    notification is written (an email can wait in the queue for a day of retries)."""
    inbox, settings = smtp
    clock = clock_of(gw)
    today = NOW.date()
    ada = member(gw, born=date(1990, today.month, today.day))
    consent(gw, ada, "coalition_marketing", None)
    assert jobs.birthdays(gw.services.engine, clock).notified == 1  # a marketing email queued
    earn(gw, "c-1", 10_000, "p-1")
    drain(gw, consumer(gw))  # and a transactional one
    consent(gw, ada, "coalition_marketing", None, granted=False)  # withdrawn before sending
    assert send(gw, settings) == mail.SendRun(sent=1, retried=0, failed=1)
    assert inbox.subjects(ADA) == ["You earned 10 points at Kolos Grocery"]
    with UnitOfWork(gw.services.engine, write=False) as uow:
        errors = sorted(str(e) for e in uow.conn.execute(
            select(t.notification_emails.c.last_error)).scalars() if e is not None)
    assert errors == ["marketing consent withdrawn"]
    # A partner's offer also needs the partner's consent at sending time.
    from gateway.promotions.coupon_issue import CouponTerms, issue_coupons
    from gateway.promotions.model import CouponPresented

    consent(gw, ada, "coalition_marketing", None)
    consent(gw, ada, "marketing", "grocery")
    publish(gw, replace(bonus_campaign("grocery:spring", 200), conditions=(CouponPresented(),)))
    issue_coupons(gw.services.engine, "grocery", CouponTerms("spring"), 1, customer_id="c-1",
                  now=clock.now(), actor="test")
    drain(gw, consumer(gw))
    assert next(k for k, _ in feed(gw, ada)) == "offer_available"
    consent(gw, ada, "marketing", "grocery", granted=False)
    assert send(gw, settings) == mail.SendRun(sent=0, retried=0, failed=1)
    assert len(inbox.messages) == 1


def test_a_return_that_gives_points_back_says_so(gw: Gateway) -> None:
    """Review 2: a return refunds the points spent on the purchase less those it earned; when
    that leaves the member with more points, the notification must not say "taken back"."""
    from gateway.ledger.model import RedeemPoints
    from gateway.ledger.service import redeem_points

    ada = member(gw)
    earn(gw, "c-1", 120_000, "p-1")  # 120 points
    earn(gw, "c-1", 20_000, "p-2")  # 20 points
    redeem_points(gw.services.ledger, RedeemPoints("grocery", "c-1", 100, Money(20_000, "UAH"),
                                                   "k-r", purchase_id="p-2"))
    return_purchase(gw.services.ledger, ReturnPurchase("grocery", "p-2", Money(20_000, "UAH"),
                                                       "k-ret"))  # +100 refunded, -20 taken
    drain(gw, consumer(gw))
    assert feed(gw, ada)[0] == ("points_returned",
                                "80 points back in your wallet after a return at Kolos Grocery")
