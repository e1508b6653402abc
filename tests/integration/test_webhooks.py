"""Partner webhooks through the worker's own steps, on this run's real database (SQLite, or
PostgreSQL in the PG pass), against a real HTTP receiver that checks every signature with an
independent implementation of the Standard Webhooks scheme. Time is the gateway's FixedClock:
the tests move it to each retry instead of sleeping.

The grocery earns 1 point per 10.00 UAH: 1,200.00 UAH earns 120 points. The back-off ceilings
after failures 1, 2, 3, 4 are 5, 10, 20, 40 seconds; the tests' jitter draws the ceiling itself
(``Ceiling``), so the retries land exactly there."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core.clock import FixedClock, SystemClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.db.engine import make_engine
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.members.secrets import reference_for
from gateway.outbox import Consumer, Event, read_events
from gateway.webhooks import consumer_of, deliveries, subscriptions
from gateway.worker.loop import Options, Totals, one_pass, run
from tests.support import harness
from tests.support.harness import NOW, make_gateway
from tests.support.webhook_receiver import Receiver, receiving, verify

TIMEOUT_S = 0.5
OPTIONS = Options(batch=50, timeout_s=TIMEOUT_S, lease=timedelta(seconds=30))
_keys = itertools.count()


class Ceiling(random.Random):
    """Jitter that always draws the top of its range: the schedule's ceilings, exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, clock=FixedClock(NOW))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def clock_of(gw: Gateway) -> FixedClock:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    return clock


def earn(gw: Gateway, customer: str = "c-1", minor: int = 120_000) -> None:
    n = next(_keys)
    earn_points(gw.services.ledger, EarnPoints("grocery", customer, Money(minor, "UAH"),
                                               "store", f"p-{n}", f"k-{n}"))


def subscribe(gw: Gateway, url: str, types: tuple[str, ...] = ("points.*",),
              partner: str = "grocery") -> subscriptions.WithSecret:
    return subscriptions.create(gw.services.engine, partner, url, types, production=False,
                                actor="test", now=gw.services.clock.now())


def work(gw: Gateway, rng: random.Random | None = None) -> Totals:
    totals = Totals()
    one_pass(gw.services.engine, gw.services.clock, (), OPTIONS, totals, rng=rng or Ceiling())
    return totals


def rows(gw: Gateway, subscription_id: str | None = None) -> list[Any]:
    d = t.event_deliveries
    query = select(d).order_by(d.c.id)
    if subscription_id is not None:
        query = query.where(d.c.consumer == consumer_of(subscription_id))
    with gw.services.engine.connect() as conn:
        return list(conn.execute(query).all())


def events(gw: Gateway, prefix: str = "points.") -> list[Event]:
    with gw.services.engine.connect() as conn:
        return [e for e in read_events(conn, limit=1000) if e.type.startswith(prefix)]


def test_a_delivery_is_signed_and_names_the_member_by_the_partners_customer_id(
        gw: Gateway, receiver: Receiver) -> None:
    membership = enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    totals = work(gw)

    (event,) = events(gw)
    assert (totals.events, totals.deliveries, totals.outcomes["delivered"]) == (2, 1, 1)
    (got,) = receiver.requests  # member.linked is not in points.*
    assert got.webhook_id == event.id
    assert got.timestamp == str(int(NOW.timestamp()))
    assert verify(made.secret, got.webhook_id, got.timestamp, got.body, got.signature)
    other = "whsec_" + "A" * 44
    assert not verify(other, got.webhook_id, got.timestamp, got.body, got.signature)
    reference = reference_for(gw.services.engine, gw.services.clock, "grocery",
                              membership.member_id)
    assert got.json == {"type": "points.earned", "timestamp": NOW.isoformat(), "data": {
        "operationId": event.operation_id, "kind": "earn", "points": 120,
        "purchaseId": event.data["purchase_id"], "channel": "store", "amountMinor": 120_000,
        "currency": "UAH", "customerId": "c-1", "memberReference": reference}}
    assert membership.member_id not in got.body.decode()
    (row,) = rows(gw, made.subscription.id)
    assert (row.state, row.attempts, row.last_status, row.delivered_at) == (
        "delivered", 1, 200, NOW)


def test_a_partner_receives_only_its_own_events(gw: Gateway, receiver: Receiver) -> None:
    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    clock_of(gw).advance(timedelta(seconds=1))
    theirs = subscribe(gw, receiver.url, ("*",), partner="electronics")
    ours = subscribe(gw, receiver.url, ("points.earned", "member.linked"))
    earn(gw)
    work(gw)
    assert rows(gw, theirs.subscription.id) == []
    assert {r.state for r in rows(gw, ours.subscription.id)} == {"delivered"}
    assert len(receiver.requests) == 1  # the link came before the subscription existed
    assert receiver.requests[0].json["type"] == "points.earned"
    assert verify(ours.secret, receiver.requests[0].webhook_id, receiver.requests[0].timestamp,
                  receiver.requests[0].body, receiver.requests[0].signature)


def test_failures_and_a_timeout_retry_with_growing_delays_until_it_recovers(
        gw: Gateway, receiver: Receiver) -> None:
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    receiver.mode = "fail"
    seen: list[tuple[int, Any, str | None]] = []
    for waited in (None, 5, 10, 20):  # attempts 1-4: three 500s, then a timeout
        if waited is not None:
            work(gw)  # one instant early: nothing is due yet
            assert len(receiver.requests) == len(seen)
            clock.advance(timedelta(seconds=waited))
        if len(seen) == 3:
            receiver.mode, receiver.slow_s = "slow", TIMEOUT_S * 4
        assert work(gw).outcomes == Counter({"retry": 1})
        (row,) = rows(gw, made.subscription.id)
        seen.append((row.attempts, row.next_attempt_at - clock.now(), row.last_error))
    assert seen == [(1, timedelta(seconds=5), "HTTP 500"), (2, timedelta(seconds=10), "HTTP 500"),
                    (3, timedelta(seconds=20), "HTTP 500"),
                    (4, timedelta(seconds=40), f"timed out after {TIMEOUT_S:g} s")]
    receiver.mode = "ok"
    clock.advance(timedelta(seconds=40))
    assert work(gw).outcomes == Counter({"delivered": 1})
    (row,) = rows(gw, made.subscription.id)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 5, None)
    assert len(set(receiver.ids())) == 1 and len(receiver.requests) == 5  # one webhook-id
    assert all(verify(made.secret, r.webhook_id, r.timestamp, r.body, r.signature)
               for r in receiver.requests)
    # each attempt signs its own send time
    assert [int(r.timestamp) - int(NOW.timestamp()) for r in receiver.requests] == [
        0, 5, 15, 35, 75]


def expected_attempts_in_a_day() -> int:
    """The schedule, computed here from its documented ceilings: an attempt at each t below
    24 h, the next after attempt n at t + ceiling(n), and a last one at 24 h exactly."""
    t, n = 0.0, 0
    while t < 86_400:
        n += 1
        t += min(3600.0, 5.0 * 2 ** (n - 1))
    return n + 1


def test_after_24_hours_of_failures_it_is_dead_and_a_replay_delivers_it_again(
        gw: Gateway, receiver: Receiver) -> None:
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    receiver.mode = "fail"
    while True:
        work(gw)
        (row,) = rows(gw, made.subscription.id)
        if row.state != "pending":
            break
        clock.set(row.next_attempt_at)
    assert row.state == "dead" and row.last_status == 500
    assert row.attempts == expected_attempts_in_a_day() == 34
    assert clock.now() == NOW + timedelta(hours=24)  # the last try at the window's end
    assert len(receiver.requests) == 34
    dead_at = clock.now()
    clock.advance(timedelta(days=2))
    assert work(gw).outcomes == Counter()  # a dead letter is never tried again by itself

    receiver.mode = "ok"
    replayed = deliveries.replay_dead(gw.services.engine, "grocery", made.subscription.id,
                                      since=dead_at - timedelta(days=1), until=clock.now(),
                                      now=clock.now())
    assert (replayed.count, replayed.more) == (1, False)
    assert work(gw).outcomes == Counter({"delivered": 1})
    assert len(receiver.requests) == 35 and len(set(receiver.ids())) == 1
    (row,) = rows(gw, made.subscription.id)
    assert (row.state, row.attempts) == ("delivered", 35)
    # and one delivery by id, delivered already: sent once more, same webhook-id
    again = deliveries.replay(gw.services.engine, "grocery", row.id, now=clock.now())
    assert again.state == "pending"
    assert work(gw).outcomes == Counter({"delivered": 1})
    assert len(receiver.requests) == 36 and len(set(receiver.ids())) == 1


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(gw: Gateway,
                                                            receiver: Receiver) -> None:
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    rotated = subscriptions.rotate(gw.services.engine, "grocery", made.subscription.id,
                                   now=clock.now())
    assert rotated.secret != made.secret
    assert rotated.subscription.previous_secret_until == NOW + timedelta(hours=24)
    earn(gw)
    work(gw)
    clock.advance(timedelta(hours=24))
    earn(gw)
    work(gw)
    first, second = receiver.requests
    assert len(first.signature.split(" ")) == 2
    for secret in (made.secret, rotated.secret):
        assert verify(secret, first.webhook_id, first.timestamp, first.body, first.signature)
    assert len(second.signature.split(" ")) == 1  # the overlap is over
    assert verify(rotated.secret, second.webhook_id, second.timestamp, second.body,
                  second.signature)
    assert not verify(made.secret, second.webhook_id, second.timestamp, second.body,
                      second.signature)


def test_a_disabled_subscription_gets_nothing_more(gw: Gateway, receiver: Receiver) -> None:
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    work(gw)
    receiver.mode = "fail"
    earn(gw)
    work(gw)  # the second fails and waits for its retry
    subscriptions.disable(gw.services.engine, "grocery", made.subscription.id, now=clock.now())
    earn(gw)  # after the disable: no delivery at all
    clock.advance(timedelta(seconds=5))
    work(gw)
    states = [r.state for r in rows(gw, made.subscription.id)]
    assert states == ["delivered", "dead"]
    assert len(receiver.requests) == 2
    assert rows(gw, made.subscription.id)[1].last_error == "subscription disabled"


@pytest.mark.serial  # on PostgreSQL both workers must get a share: run alone, not under load
def test_two_workers_share_the_events_and_deliver_each_exactly_once(
        gw: Gateway, receiver: Receiver) -> None:
    """Two workers (each its own engine, as two processes would have), 60 events, nothing
    failing: every event reaches the webhook and the in-process consumer exactly once; on
    PostgreSQL both workers delivered some."""
    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    subscribe(gw, receiver.url)
    handled: list[str] = []
    lock = threading.Lock()

    def handle(engine: Any, event: Event) -> None:
        with lock:
            handled.append(event.id)

    counter = Consumer("counter", frozenset({"points.earned"}), handle)
    for _ in range(60):
        earn(gw, minor=10_000)
    url = gw.services.settings.database_url
    engines = [harness.track(make_engine(url)) for _ in range(2)]
    options = Options(batch=7, timeout_s=5.0, concurrency=4)
    done: list[Totals] = []

    def worker(engine: Any) -> None:
        done.append(run(engine, SystemClock(), (counter,), options, once=True))

    threads = [threading.Thread(target=worker, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    ids = {e.id for e in events(gw)}
    assert len(ids) == 60
    assert Counter(receiver.ids()) == Counter({i: 1 for i in ids})
    assert Counter(handled) == Counter({i: 1 for i in ids})
    assert sum(d.outcomes["delivered"] for d in done) == 120
    if harness.BACKEND == "postgresql":  # SKIP LOCKED: both take rows at once (on SQLite one
        # writer at a time, and a worker run with once=True may find nothing left for it)
        assert all(d.outcomes["delivered"] > 0 for d in done), [d.outcomes for d in done]
    assert {r.state for r in rows(gw)} == {"delivered"}


def cli(gw: Gateway, argv: list[str]) -> int:
    import argparse
    import types

    from gateway.worker import cli as worker_cli

    root = argparse.ArgumentParser()
    worker_cli.register(root.add_subparsers(dest="c"), lambda: types.SimpleNamespace(
        engine=gw.services.engine, settings=gw.services.settings, clock=gw.services.clock))
    args = root.parse_args(argv)
    return int(args.func(args))


def test_the_cli_lists_subscriptions_and_replays_dead_deliveries(
        gw: Gateway, receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    receiver.mode = "fail"
    while True:
        work(gw)
        (row,) = rows(gw, made.subscription.id)
        if row.state != "pending":
            break
        clock.set(row.next_attempt_at)
    assert cli(gw, ["webhooks", "list", "--partner", "grocery"]) == 0
    assert capsys.readouterr().out == (
        f"{made.subscription.id} active   {receiver.url} types=points.* pending=0 delivered=0 "
        "dead=1\n")
    assert cli(gw, ["webhooks", "replay", "--partner", "grocery", "--subscription",
                    made.subscription.id, "--since", NOW.isoformat()]) == 0
    assert capsys.readouterr().out == "1 dead deliveries pending again\n"
    receiver.mode = "ok"
    work(gw)
    assert cli(gw, ["webhooks", "replay", "--partner", "grocery", "--delivery", row.id]) == 0
    assert capsys.readouterr().out == f"{row.id} pending again (event {row.event_id}), due now\n"
    work(gw)
    assert receiver.ids() == [row.event_id] * 36  # 34 failures, then two replays
    assert cli(gw, ["webhooks", "list", "--partner", "electronics"]) == 0
    assert capsys.readouterr().out == "no webhook subscriptions for electronics\n"


def test_an_in_process_consumer_that_raises_is_retried_under_the_same_event(
        gw: Gateway) -> None:
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    calls: list[str] = []

    def flaky(engine: Any, event: Event) -> None:
        calls.append(event.id)
        if len(calls) < 3:
            raise RuntimeError("the consumer's store is down")

    consumer = Consumer("flaky", frozenset({"points.earned"}), flaky)
    earn(gw)
    for step in (None, 5, 10):
        if step is not None:
            clock.advance(timedelta(seconds=step))
        totals = Totals()
        one_pass(gw.services.engine, clock, (consumer,), OPTIONS, totals, rng=Ceiling())
    (row,) = rows(gw)
    assert (row.consumer, row.state, row.attempts, row.last_error) == (
        "flaky", "delivered", 3, None)
    assert len(set(calls)) == 1 and len(calls) == 3


def test_a_claim_whose_lease_ran_out_cannot_record_its_outcome(gw: Gateway) -> None:
    """Worker A claims, outlives its lease; worker B claims the same row again. B's outcome
    is recorded, A's (arriving later) is not: one recorded outcome per delivery."""
    from gateway.webhooks.sender import Attempt
    from gateway.worker.deliver import claim_due, finish
    from gateway.worker.dispatch import dispatch

    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    consumer = Consumer("c", frozenset({"points.earned"}), lambda engine, event: None)
    earn(gw)
    engine = gw.services.engine
    assert dispatch(engine, (consumer,), now=clock.now(), limit=10).deliveries == 1
    (a,) = claim_due(engine, now=clock.now(), limit=10, lease=timedelta(seconds=30))
    assert claim_due(engine, now=clock.now(), limit=10) == []  # leased: nobody else's
    clock.advance(timedelta(seconds=30))
    (b,) = claim_due(engine, now=clock.now(), limit=10, lease=timedelta(seconds=30))
    assert (a.id, a.attempt, b.attempt) == (b.id, 1, 2)
    assert finish(engine, b, Attempt(True, None, None), now=clock.now(), rng=Ceiling()) == (
        "delivered")
    assert finish(engine, a, Attempt(False, 500, "HTTP 500"), now=clock.now(),
                  rng=Ceiling()) == "superseded"
    (row,) = rows(gw)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 2, None)


def test_a_production_worker_refuses_a_host_that_resolves_to_a_private_address(
        gw: Gateway, receiver: Receiver) -> None:
    """A name is only checked at delivery (creation sees no address): "localhost" here, as a
    partner's name pointed at 10.0.0.7 would be. The receiver is never contacted."""
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url.replace("127.0.0.1", "localhost"))
    earn(gw)
    production = Options(timeout_s=TIMEOUT_S, private_networks=False)
    totals = Totals()
    one_pass(gw.services.engine, clock, (), production, totals, rng=Ceiling())
    (row,) = rows(gw, made.subscription.id)
    assert (totals.outcomes["retry"], row.last_error) == (
        1, "refused: the host resolves to a private address")
    assert receiver.requests == []
    clock.advance(timedelta(seconds=5))
    work(gw)  # a development worker (private networks allowed) delivers it
    assert len(receiver.requests) == 1


def test_a_claim_whose_lease_cannot_cover_its_attempt_is_not_sent_and_nothing_doubles(
        gw: Gateway, receiver: Receiver) -> None:
    """Review (issue 13): a worker claims a whole batch at once but runs it a few at a time;
    with a receiver that is slow but never fails, the batch's tail used to be sent after its
    lease had ended, when another worker had claimed it again: the same event twice with
    nothing failing. Worker A claims 14 deliveries (lease 2 s, timeout 1 s) and sends them one
    at a time, each answered in 0.2 s; worker B polls beside it. Every event arrives once."""
    from gateway.worker.deliver import deliver_due
    from gateway.worker.dispatch import dispatch

    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    subscribe(gw, receiver.url)
    for _ in range(14):
        earn(gw, minor=10_000)
    assert dispatch(gw.services.engine, (), now=gw.services.clock.now(), limit=50
                    ).deliveries == 14
    receiver.mode, receiver.slow_s = "slow", 0.2
    url = gw.services.settings.database_url
    engine_a, engine_b = (harness.track(make_engine(url)) for _ in range(2))
    stop = threading.Event()
    lease = timedelta(seconds=2)
    b_outcomes: Counter[str] = Counter()

    def worker_b() -> None:
        receiver.arrived.wait(30)  # A has claimed the batch and started sending
        while not stop.is_set():
            b_outcomes.update(deliver_due(engine_b, SystemClock(), (), limit=20, lease=lease,
                                          timeout=1.0))
            stop.wait(0.05)

    thread = threading.Thread(target=worker_b)
    thread.start()
    try:
        a_outcomes = deliver_due(engine_a, SystemClock(), (), limit=20, lease=lease,
                                 timeout=1.0)
        for _ in range(400):
            if {r.state for r in rows(gw)} == {"delivered"}:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(30)
    ids = {e.id for e in events(gw)}
    assert len(ids) == 14
    assert Counter(receiver.ids()) == Counter({i: 1 for i in ids}), (a_outcomes, b_outcomes)
    assert {r.state for r in rows(gw)} == {"delivered"}
    assert a_outcomes["delivered"] + b_outcomes["delivered"] == 14
    assert a_outcomes["released"] > 0 and b_outcomes["delivered"] > 0


def test_a_backlog_older_than_a_day_still_gets_its_24_hours_of_retries(
        gw: Gateway, receiver: Receiver) -> None:
    """Review (issue 13): the retry window used to run from the event's recording, so after a
    worker outage of more than a day every delivery that failed once went straight to the
    dead letters (an in-process consumer's too), with no retry at all. The window runs from
    the first attempt's dispatch: 24 hours of retries, whenever the worker comes back."""
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    clock.advance(timedelta(hours=30))  # no worker ran for 30 hours
    receiver.mode = "fail"
    assert work(gw).outcomes == Counter({"retry": 1})
    (row,) = rows(gw, made.subscription.id)
    assert (row.state, row.give_up_at) == ("pending", NOW + timedelta(hours=54))
    receiver.mode = "ok"
    clock.advance(timedelta(seconds=5))
    assert work(gw).outcomes == Counter({"delivered": 1})
    assert len(receiver.requests) == 2


def test_an_in_process_consumers_dead_letters_can_be_replayed_from_the_cli(
        gw: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    """Review (issue 13): a dead delivery to an in-process consumer (challenges, draws,
    notifications after 24 hours of failures) could not be replayed at all: both replays
    (GraphQL and ``gateway webhooks replay``) take a partner's subscription. ``gateway worker
    replay --consumer NAME`` makes its dead deliveries in a window due again, same event."""
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    calls: list[str] = []
    broken = [True]

    def handle(engine: Any, event: Event) -> None:
        calls.append(event.id)
        if broken[0]:
            raise RuntimeError("the consumer's bug")

    consumer = Consumer("flaky", frozenset({"points.earned"}), handle)

    def pass_() -> Counter[str]:
        totals = Totals()
        one_pass(gw.services.engine, clock, (consumer,), OPTIONS, totals, rng=Ceiling())
        return totals.outcomes

    earn(gw)
    while True:
        pass_()
        (row,) = rows(gw)
        if row.state != "pending":
            break
        clock.set(row.next_attempt_at)
    assert (row.consumer, row.state, len(calls)) == ("flaky", "dead", 34)
    broken[0] = False
    assert cli(gw, ["worker-replay", "--consumer", "flaky", "--since", NOW.isoformat()]) == 0
    assert capsys.readouterr().out == "1 dead deliveries to flaky pending again\n"
    assert pass_() == Counter({"delivered": 1})
    assert calls == [row.event_id] * 35
    assert cli(gw, ["worker-replay", "--consumer", "webhook:whs_x"]) == 2  # not a webhook's
    assert "gateway webhooks replay" in capsys.readouterr().err


def test_the_claim_finds_due_deliveries_by_the_partial_index_even_in_a_generic_plan(
        gw: Gateway) -> None:
    """Review (issue 13): the claim's ``state = 'pending'`` was sent as a parameter. SQLite
    plans with the value, but a PostgreSQL generic plan (psycopg prepares a statement on its
    fifth run; the server may then plan it once for any value) cannot prove the partial index
    ``ix_event_deliveries_due`` covers ``state = $1``, and scanned another index over every
    delivery ever made. The claim the worker sends is planned here both ways."""
    import re

    from sqlalchemy import event as sa_event

    from gateway.worker.deliver import claim_due

    engine = gw.services.engine
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE EVENT_DELIVERIES"):
            sent.append((statement, parameters))

    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        claim_due(engine, now=gw.services.clock.now(), limit=10)
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = sent
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if harness.BACKEND == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = "\n".join(str(row[3]) for row in cursor.fetchall())
        else:
            from psycopg import sql

            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}"

            prepared = re.sub(r"%\((\w+)\)s", number, statement)
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE review_claim AS {prepared}")
            values = ", ".join(sql.Literal(parameters[n]).as_string(cast(Any, raw))
                               for n in names)
            cursor.execute(f"EXPLAIN EXECUTE review_claim({values})")
            plan = "\n".join(str(row[0]) for row in cursor.fetchall())
            cursor.execute("DEALLOCATE review_claim")
            cursor.execute("RESET plan_cache_mode")
        raw.rollback()
    assert "ix_event_deliveries_due" in plan, plan


def test_a_replay_of_a_window_searches_only_that_windows_dead_letters(gw: Gateway) -> None:
    """Review (issue 13): ``replayWebhookDeliveries`` (a partner's request) walked every dead
    delivery of the subscription in id order, filtering the window out of them: its cost grew
    with the subscription's whole history of dead letters. The window now bounds the index
    search (the partial index ix_event_deliveries_dead: consumer, created_at WHERE dead)."""
    from sqlalchemy import event as sa_event

    engine = gw.services.engine
    made = subscribe(gw, "http://127.0.0.1:9/hooks")
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if "FROM event_deliveries" in statement and "created_at" in statement:
            sent.append((statement, parameters))

    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        now = gw.services.clock.now()
        deliveries.replay_dead(engine, "grocery", made.subscription.id,
                               since=now - timedelta(hours=1), until=now, now=now)
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = sent
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if harness.BACKEND == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = "\n".join(str(row[3]) for row in cursor.fetchall())
            assert "USING INDEX ix_event_deliveries_dead (consumer=? AND created_at>? AND " \
                   "created_at<?)" in plan, plan
        else:
            cursor.execute("SET enable_seqscan = off")  # an empty table: any plan is cheap
            cursor.execute(f"EXPLAIN {statement}", parameters)
            plan = "\n".join(str(row[0]) for row in cursor.fetchall())
            assert "ix_event_deliveries_dead" in plan and "created_at >=" in plan, plan
        raw.rollback()


def test_410_gone_disables_the_subscription_and_ends_the_delivery(
        gw: Gateway, receiver: Receiver) -> None:
    """Review (issue 13): Standard Webhooks asks a sender to disable an endpoint that answers
    ``410 Gone`` and stop sending it; the worker retried it for 24 hours like any failure. Now
    the delivery ends dead at once, the subscription is disabled (the partner subscribes
    again when it wants events), and nothing more is sent."""
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    receiver.mode = "gone"
    assert work(gw).outcomes == Counter({"dead": 1})
    (row,) = rows(gw, made.subscription.id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "dead", 1, 410, "HTTP 410: the endpoint is gone; subscription disabled")
    (found,) = subscriptions.listed(gw.services.engine, "grocery")
    assert (found.state, found.disabled_at) == ("disabled", NOW)
    earn(gw)
    clock.advance(timedelta(hours=1))
    assert work(gw).outcomes == Counter()
    assert len(receiver.requests) == 1


# --- review of issue 13's pipeline, part 2 (decision 030: the items found but not fixed) --------
def test_429_with_retry_after_sets_the_next_attempt_when_later_than_the_back_off(
        gw: Gateway, receiver: Receiver) -> None:
    """``429`` with ``Retry-After`` in seconds or as an HTTP date is the next attempt's time
    when later than the back-off (the back-off's ceiling after the 1st failure: 5 s); never
    past the 24-hour window; an earlier one, or none, leaves the back-off."""
    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    receiver.mode, receiver.retry_after = "busy", "120"
    assert work(gw).outcomes == Counter({"retry": 1})
    (row,) = rows(gw, made.subscription.id)
    assert (row.last_status, row.next_attempt_at) == (429, NOW + timedelta(seconds=120))

    clock.set(row.next_attempt_at)
    at = clock.now() + timedelta(hours=2)
    receiver.retry_after = at.strftime("%a, %d %b %Y %H:%M:%S GMT")  # an HTTP date
    assert work(gw).outcomes == Counter({"retry": 1})
    (row,) = rows(gw, made.subscription.id)
    assert row.next_attempt_at == at

    clock.set(row.next_attempt_at)
    receiver.retry_after = "1"  # earlier than the back-off (3rd failure: ceiling 20 s)
    work(gw)
    (row,) = rows(gw, made.subscription.id)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=20)

    clock.set(row.next_attempt_at)
    receiver.retry_after = str(3 * 24 * 3600)  # three days: capped at the window's end
    work(gw)
    (row,) = rows(gw, made.subscription.id)
    assert (row.state, row.next_attempt_at) == ("pending", NOW + timedelta(hours=24))
    assert row.give_up_at == NOW + timedelta(hours=24)
    clock.set(row.next_attempt_at)  # the last try, at the window's end; then dead
    assert work(gw).outcomes == Counter({"dead": 1})
    assert len(receiver.requests) == 5


def test_retry_after_parsing() -> None:
    from gateway.worker.backoff import retry_after

    assert retry_after("0", NOW) == NOW
    assert retry_after(" 30 ", NOW) == NOW + timedelta(seconds=30)
    assert retry_after("Wed, 21 Oct 2099 07:28:00 GMT", NOW) is not None
    assert retry_after("Wed, 21 Oct 2099 07:28:00 GMT", NOW).isoformat() == (  # type: ignore[union-attr]
        "2099-10-21T07:28:00+00:00")
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) is None  # in the past
    for junk in (None, "", "-5", "1.5", "soon", "Wed, 99 Foo"):
        assert retry_after(junk, NOW) is None


def test_the_webhook_timeout_is_15_s_and_the_lease_stays_above_it() -> None:
    from gateway.webhooks import sender
    from gateway.worker import cli as worker_cli
    from gateway.worker.deliver import LEASE
    from gateway.worker.loop import Options as LoopOptions

    assert sender.TIMEOUT_S == 15.0 == LoopOptions().timeout_s
    assert timedelta(seconds=sender.TIMEOUT_S) < LEASE
    import argparse
    parser = argparse.ArgumentParser()
    worker_cli.register(parser.add_subparsers(), lambda: None)
    args = parser.parse_args(["worker"])
    assert (args.timeout, args.lease) == (15.0, 60.0)


def test_a_second_rotation_within_the_overlap_is_refused_and_changes_nothing(
        gw: Gateway, receiver: Receiver) -> None:
    """Rotating twice within 24 hours used to overwrite the one previous-secret slot: the first
    secret stopped signing hours before its promised 24. Now the second rotation is refused
    (INVALID_INPUT on subscriptionId); both secrets in force keep signing; after the overlap a
    rotation is allowed again."""
    from gateway.core.errors import InvalidInput

    clock = clock_of(gw)
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    first = subscriptions.rotate(gw.services.engine, "grocery", made.subscription.id,
                                 now=clock.now())
    clock.advance(timedelta(hours=6))
    with pytest.raises(InvalidInput) as refused:
        subscriptions.rotate(gw.services.engine, "grocery", made.subscription.id,
                             now=clock.now())
    assert refused.value.field == "subscriptionId"
    assert (NOW + timedelta(hours=24)).isoformat() in str(refused.value)
    (found,) = subscriptions.listed(gw.services.engine, "grocery")
    assert found.previous_secret_until == NOW + timedelta(hours=24)  # unchanged
    earn(gw)
    work(gw)
    (sent,) = receiver.requests
    assert len(sent.signature.split(" ")) == 2
    for secret in (made.secret, first.secret):
        assert verify(secret, sent.webhook_id, sent.timestamp, sent.body, sent.signature)
    clock.set(NOW + timedelta(hours=24))
    second = subscriptions.rotate(gw.services.engine, "grocery", made.subscription.id,
                                  now=clock.now())
    assert second.subscription.previous_secret_until == NOW + timedelta(hours=48)


def test_replaying_a_delivery_a_live_worker_is_sending_does_not_send_it_twice(
        gw: Gateway, receiver: Receiver) -> None:
    """Worker A is sending a delivery (the receiver holds the request). The partner replays
    it: the replay used to clear A's lease, so worker B claimed and sent it beside A. Now the
    held row is left as it is (answered pending), B finds nothing, the event arrives once; a
    replay once A has recorded its outcome sends it again."""
    from gateway.worker.deliver import deliver_due
    from gateway.worker.dispatch import dispatch

    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "c-1")
    made = subscribe(gw, receiver.url)
    earn(gw)
    engine = gw.services.engine
    assert dispatch(engine, (), now=gw.services.clock.now(), limit=10).deliveries == 1
    receiver.mode = "hold"
    url = gw.services.settings.database_url
    engine_a, engine_b = (harness.track(make_engine(url)) for _ in range(2))
    a_outcomes: Counter[str] = Counter()

    def worker_a() -> None:
        a_outcomes.update(deliver_due(engine_a, SystemClock(), (), limit=10,
                                      lease=timedelta(seconds=30), timeout=10.0))

    thread = threading.Thread(target=worker_a)
    thread.start()
    try:
        assert receiver.arrived.wait(30)
        (held,) = rows(gw, made.subscription.id)
        assert held.leased_until is not None and held.attempts == 1
        now = SystemClock().now()
        answered = deliveries.replay(engine, "grocery", held.id, now=now)
        assert (answered.state, answered.attempts) == ("pending", 1)
        (after,) = rows(gw, made.subscription.id)
        assert (after.leased_until, after.next_attempt_at, after.give_up_at, after.attempts) == (
            held.leased_until, held.next_attempt_at, held.give_up_at, 1)
        assert deliver_due(engine_b, SystemClock(), (), limit=10, timeout=1.0) == Counter()
    finally:
        receiver.release()
        thread.join(30)
    assert a_outcomes == Counter({"delivered": 1})
    assert len(receiver.requests) == 1
    again = deliveries.replay(engine, "grocery", held.id, now=SystemClock().now())
    assert again.state == "pending"
    receiver.mode = "ok"
    assert deliver_due(engine_b, SystemClock(), (), limit=10, timeout=1.0) == Counter(
        {"delivered": 1})
    assert receiver.ids() == [held.event_id, held.event_id]
