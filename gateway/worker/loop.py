"""The worker's loop: dispatch a batch, deliver a batch, log one line if anything happened,
sleep ``poll`` seconds when there was nothing to do. ``once`` drains what is due now and
returns (for cron-style runs and tests)."""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.clock import Clock
from gateway.observability.metrics import WorkerMetrics
from gateway.outbox import Consumer
from gateway.webhooks.sender import TIMEOUT_S
from gateway.worker.deliver import LEASE, deliver_due
from gateway.worker.dispatch import dispatch

log = logging.getLogger("gateway.worker")


@dataclass(frozen=True, slots=True)
class Options:
    batch: int = 100  # events dispatched, and deliveries claimed, per step
    poll_s: float = 1.0  # the sleep when a pass found nothing to do
    lease: timedelta = LEASE
    timeout_s: float = TIMEOUT_S
    concurrency: int = 8  # deliveries run at once (threads)
    # Whether webhooks may go to hosts that resolve to private addresses: yes in development
    # and tests (receivers on localhost), no in production (``gateway worker`` sets it).
    private_networks: bool = True


@dataclass
class Totals:
    """What this worker has done since it started (logged, and read by tests)."""

    events: int = 0
    deliveries: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    passes: int = 0
    metrics: WorkerMetrics | None = None  # also counted here, if given


def one_pass(engine: Engine, clock: Clock, consumers: Sequence[Consumer], options: Options,
             totals: Totals, *, pool: ThreadPoolExecutor | None = None,
             rng: random.Random | None = None) -> bool:
    """Dispatch one batch and deliver one batch; whether anything was done."""
    dispatched = dispatch(engine, consumers, now=clock.now(), limit=options.batch)
    outcomes = deliver_due(engine, clock, consumers, limit=options.batch, lease=options.lease,
                           timeout=options.timeout_s, rng=rng, pool=pool,
                           private_networks=options.private_networks)
    totals.passes += 1
    totals.events += dispatched.events
    totals.deliveries += dispatched.deliveries
    totals.outcomes.update(outcomes)
    if totals.metrics is not None:
        totals.metrics.record_pass(dispatched.events, dispatched.deliveries, dict(outcomes))
    busy = bool(dispatched.events or outcomes)
    if busy:
        log.info("worker batch: dispatched %d events into %d deliveries; delivered %d, "
                 "retry %d, dead %d, superseded %d, released %d", dispatched.events,
                 dispatched.deliveries, outcomes["delivered"], outcomes["retry"],
                 outcomes["dead"], outcomes["superseded"], outcomes["released"])
    return busy


def run(engine: Engine, clock: Clock, consumers: Sequence[Consumer], options: Options, *,
        once: bool = False, stop: threading.Event | None = None,
        rng: random.Random | None = None, metrics: WorkerMetrics | None = None) -> Totals:
    stop = stop or threading.Event()
    totals = Totals(metrics=metrics)
    with ThreadPoolExecutor(max_workers=options.concurrency,
                            thread_name_prefix="delivery") as pool:
        while not stop.is_set():
            try:
                busy = one_pass(engine, clock, consumers, options, totals, pool=pool, rng=rng)
            except SQLAlchemyError:
                # The database went away for a moment (a restart, a failover): what this pass
                # claimed comes back when its leases end; keep going rather than exit.
                log.exception("worker pass failed; retrying in %g s", options.poll_s)
                if once:
                    raise
                busy = False
            if once and not busy:
                break
            if not busy:
                stop.wait(options.poll_s)
    return totals
