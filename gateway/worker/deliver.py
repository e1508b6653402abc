"""Deliver: lease due deliveries, run them outside any transaction, record each outcome.

The claim is one statement in its own short transaction: ``UPDATE ... SET attempts = attempts
+ 1, leased_until = now + lease, next_attempt_at = now + lease WHERE id IN (SELECT ... due, by
ix_event_deliveries_due, LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING ...``. Moving
``next_attempt_at`` to the lease's end is what makes a dead worker's claim come back: when the
lease runs out the row is simply due again, to any worker, with no sweeper.

The outcome is written with ``WHERE id = ? AND attempts = ? AND state = 'pending'``: only the
worker holding the current claim may record it. A worker that outlived its lease (the receiver
held it longer than the lease) finds its claim taken and records nothing; the other worker's
attempt stands. So a delivery runs more than once only after a death or an overlong attempt:
at least once, never lost.

A claim is taken for a whole batch but the batch runs ``concurrency`` at a time, so a claim can
wait in the pool. An attempt starts only if its lease still covers it (``now + timeout`` not past
``leased_until``); otherwise the claim is *released* (due again now, fenced like an outcome)
without sending: sending it would race the worker that may already have claimed it again, the
same event twice with nothing failing. ``attempts`` counts claims, so it keeps the release."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnClause, Engine, literal_column, select, update

from gateway.core.clock import Clock
from gateway.db.tables import event_deliveries as d
from gateway.db.tables import outbox
from gateway.db.uow import UnitOfWork
from gateway.outbox import Consumer, event_of
from gateway.webhooks import sender, subscription_of
from gateway.webhooks.sender import Attempt
from gateway.worker.backoff import next_attempt, retry_after

log = logging.getLogger("gateway.worker")
_PENDING: ColumnClause[Any] = literal_column("'pending'")
LEASE = timedelta(seconds=60)  # comfortably above the 15 s webhook timeout
MAX_ERROR = 200


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    event_id: str
    consumer: str
    attempt: int  # this attempt's number, 1-based (the fence for its outcome)
    give_up_at: datetime
    leased_until: datetime | None = None  # the claim's end: no attempt may start too close


def claim_due(engine: Engine, *, now: datetime, limit: int,
              lease: timedelta = LEASE) -> list[Claim]:
    until = now + lease
    with UnitOfWork(engine) as uow:
        # ``state = 'pending'`` as a literal, exactly as the partial index ix_event_deliveries_due
        # states it: a parameter would keep a PostgreSQL generic plan off that index.
        due = (select(d.c.id).where(d.c.state == _PENDING, d.c.next_attempt_at <= now)
               .order_by(d.c.next_attempt_at).limit(limit))
        if uow.conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = uow.conn.execute(
            update(d).where(d.c.id.in_(due.scalar_subquery()))
            .values(attempts=d.c.attempts + 1, leased_until=until, next_attempt_at=until)
            .returning(d.c.id, d.c.event_id, d.c.consumer, d.c.attempts, d.c.give_up_at)).all()
        uow.commit()
    return sorted((Claim(r.id, r.event_id, r.consumer, r.attempts, r.give_up_at, until)
                   for r in rows), key=lambda c: c.id)


def run(engine: Engine, clock: Clock, claim: Claim, consumers: Mapping[str, Consumer], *,
        timeout: float, private_networks: bool = True) -> Attempt:
    """One attempt; never raises (an error is a failed attempt)."""
    try:
        with UnitOfWork(engine, write=False) as uow:
            row = uow.conn.execute(select(outbox).where(outbox.c.id == claim.event_id)).one()
        event = event_of(row)
        subscription_id = subscription_of(claim.consumer)
        if subscription_id is not None:
            return sender.deliver(engine, clock, subscription_id, event, timeout=timeout,
                                  private_networks=private_networks)
        consumer = consumers.get(claim.consumer)
        if consumer is None:
            return Attempt(False, None, "consumer not registered in this worker")
        consumer.handle(engine, event)
        return Attempt(True, None, None)
    except Exception as exc:  # a consumer's bug must not stop the worker
        log.exception("delivery %s to %s failed", claim.id, claim.consumer)
        return Attempt(False, None, f"error: {type(exc).__name__}")


def finish(engine: Engine, claim: Claim, attempt: Attempt, *, now: datetime,
           rng: random.Random) -> str:
    """Record the outcome if this claim is still current: "delivered", "retry", "dead", or
    "superseded" (another worker holds it now; nothing written)."""
    if attempt.ok:
        outcome, values = "delivered", {"state": "delivered", "delivered_at": now}
    else:
        after = None if attempt.final else next_attempt(
            claim.attempt, rng, now=now, give_up_at=claim.give_up_at,
            retry_after_at=retry_after(attempt.retry_after, now))
        if after is None:
            outcome, values = "dead", {"state": "dead"}
        else:
            outcome, values = "retry", {"next_attempt_at": after}
    values |= {"leased_until": None, "last_status": attempt.status,
               "last_error": None if attempt.error is None else attempt.error[:MAX_ERROR]}
    with UnitOfWork(engine) as uow:
        done = uow.conn.execute(update(d).where(
            d.c.id == claim.id, d.c.attempts == claim.attempt, d.c.state == "pending"
        ).values(**values)).rowcount
        uow.commit()
    return outcome if done == 1 else "superseded"


def release(engine: Engine, claim: Claim, *, now: datetime) -> str:
    """Give back a claim not started: due again now, if it is still this claim's
    ("released"), else "superseded"."""
    with UnitOfWork(engine) as uow:
        done = uow.conn.execute(update(d).where(
            d.c.id == claim.id, d.c.attempts == claim.attempt, d.c.state == "pending"
        ).values(leased_until=None, next_attempt_at=now)).rowcount
        uow.commit()
    return "released" if done == 1 else "superseded"


def deliver_due(engine: Engine, clock: Clock, consumers: Sequence[Consumer], *, limit: int,
                lease: timedelta = LEASE, timeout: float = sender.TIMEOUT_S,
                rng: random.Random | None = None, pool: ThreadPoolExecutor | None = None,
                private_networks: bool = True) -> Counter[str]:
    """Claim up to ``limit`` due deliveries, run them (in ``pool`` if given, at once), and
    record the outcomes; the count of each outcome."""
    rng = rng or random.Random()  # jitter, not a secret
    claims = claim_due(engine, now=clock.now(), limit=limit, lease=lease)
    by_name = {c.name: c for c in consumers}

    def one(claim: Claim) -> str:
        now = clock.now()
        if claim.leased_until is not None and now + timedelta(seconds=timeout) > (
                claim.leased_until):
            return release(engine, claim, now=now)  # waited in the pool too long to start
        attempt = run(engine, clock, claim, by_name, timeout=timeout,
                      private_networks=private_networks)
        return finish(engine, claim, attempt, now=clock.now(), rng=rng)

    outcomes = list(pool.map(one, claims)) if pool is not None else [one(c) for c in claims]
    return Counter(outcomes)
