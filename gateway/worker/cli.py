"""``gateway worker`` (run the event worker) and ``gateway webhooks list|replay`` (operators'
view of partners' subscriptions and replays of their deliveries)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy import func, select

from gateway.core.clock import require_utc
from gateway.core.errors import InvalidInput
from gateway.db.tables import event_deliveries
from gateway.webhooks import consumer_of, deliveries, subscription_of, subscriptions


def register(sub: Any, context: Callable[[], Any]) -> None:
    worker = sub.add_parser("worker", help="deliver events: partner webhooks and in-process "
                            "consumers (docs/webhooks.md)")
    worker.add_argument("--once", action="store_true",
                        help="deliver what is due now, then exit")
    worker.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="sleep between passes that found nothing to do")
    worker.add_argument("--batch", type=int, default=100, metavar="N",
                        help="events dispatched and deliveries claimed per pass")
    worker.add_argument("--lease", type=float, default=60.0, metavar="SECONDS",
                        help="how long a claimed delivery is this worker's before another "
                        "may take it (keep it above --timeout)")
    worker.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                        help="webhook connect and read timeout")
    worker.add_argument("--concurrency", type=int, default=8, metavar="N",
                        help="deliveries run at once")
    worker.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve this worker's Prometheus counters on 127.0.0.1:PORT")
    worker.set_defaults(func=lambda args: cmd_worker(args, context))

    again = sub.add_parser("worker-replay", help="an in-process consumer's dead deliveries, "
                           "pending again (same events; webhooks: gateway webhooks replay)")
    again.add_argument("--consumer", required=True,
                       help="notifications, challenges, draws, ...")
    again.add_argument("--since", type=_time, help="ISO 8601 with a zone (default: 24 h ago)")
    again.add_argument("--until", type=_time, help="ISO 8601 with a zone (default: now)")
    again.set_defaults(func=lambda args: cmd_worker_replay(args, context))

    hooks = sub.add_parser("webhooks", help="partners' webhook subscriptions and deliveries"
                           ).add_subparsers(dest="webhooks_command", required=True)
    listing = hooks.add_parser("list", help="a partner's subscriptions with delivery counts")
    listing.add_argument("--partner", required=True)
    listing.set_defaults(func=lambda args: cmd_list(args, context))
    replay = hooks.add_parser("replay", help="send deliveries again (same webhook-id)")
    replay.add_argument("--partner", required=True)
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--delivery", help="one delivery id (dlv_...)")
    which.add_argument("--subscription", help="every dead delivery of this subscription in "
                       "[--since, --until)")
    replay.add_argument("--since", type=_time, help="ISO 8601 with a zone (default: 24 h ago)")
    replay.add_argument("--until", type=_time, help="ISO 8601 with a zone (default: now)")
    replay.set_defaults(func=lambda args: cmd_replay(args, context))


def _time(text: str) -> datetime:
    try:
        return require_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def cmd_worker(args: argparse.Namespace, context: Callable[[], Any]) -> int:
    from gateway.observability.logs import configure_logging
    from gateway.observability.metrics import WorkerMetrics
    from gateway.worker.consumers import build
    from gateway.worker.loop import Options, run

    if args.batch < 1 or args.concurrency < 1 or args.lease <= args.timeout:
        print("error: --batch and --concurrency must be at least 1, and --lease above "
              "--timeout", file=sys.stderr)
        return 2
    c = context()
    consumers = build(c.clock)  # the context's clock: the same "now" as the deliveries'
    configure_logging(json_lines=c.settings.log_json)
    logging.getLogger("gateway.worker").setLevel(logging.INFO)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()  # finish the pass in hand, then exit

    signal.signal(signal.SIGTERM, _stop)
    options = Options(batch=args.batch, poll_s=args.poll, lease=timedelta(seconds=args.lease),
                      timeout_s=args.timeout, concurrency=args.concurrency,
                      private_networks=not c.settings.production)
    metrics = WorkerMetrics()
    if args.metrics_port is not None:
        metrics.serve(args.metrics_port)
    print(f"worker started: {len(consumers)} in-process consumers, batch {args.batch}, "
          f"lease {args.lease:g} s, timeout {args.timeout:g} s", flush=True)
    try:
        totals = run(c.engine, c.clock, consumers, options, once=args.once, stop=stop,
                     metrics=metrics)
    except KeyboardInterrupt:
        return 130
    print(f"worker stopped: {totals.events} events dispatched, {totals.deliveries} deliveries, "
          f"{dict(totals.outcomes)}", flush=True)
    return 0


def cmd_list(args: argparse.Namespace, context: Callable[[], Any]) -> int:
    c = context()
    found = subscriptions.listed(c.engine, args.partner)
    d = event_deliveries
    with c.engine.connect() as conn:
        for s in found:
            # ix_event_deliveries_consumer_state: one subscription's rows
            counts = dict(conn.execute(
                select(d.c.state, func.count()).where(d.c.consumer == consumer_of(s.id))
                .group_by(d.c.state)).all())
            print(f"{s.id} {s.state:<8} {s.url} types={','.join(s.event_types)} "
                  f"pending={counts.get('pending', 0)} delivered={counts.get('delivered', 0)} "
                  f"dead={counts.get('dead', 0)}")
    if not found:
        print(f"no webhook subscriptions for {args.partner}")
    return 0


def cmd_replay(args: argparse.Namespace, context: Callable[[], Any]) -> int:
    c = context()
    now = c.clock.now()
    if args.delivery:
        if args.since or args.until:
            raise InvalidInput("--since and --until go with --subscription", field="since")
        done = deliveries.replay(c.engine, args.partner, args.delivery, now=now)
        print(f"{done.id} pending again (event {done.event_id}), due now")
        return 0
    since = args.since or now - timedelta(hours=24)
    until = args.until or now
    replayed = deliveries.replay_dead(c.engine, args.partner, args.subscription, since=since,
                                      until=until, now=now)
    print(f"{replayed.count} dead deliveries pending again"
          + (" (more remain: run again)" if replayed.more else ""))
    return 0


def cmd_worker_replay(args: argparse.Namespace, context: Callable[[], Any]) -> int:
    from gateway.worker.replay import replay_dead

    if subscription_of(args.consumer) is not None:
        print("error: a webhook's deliveries are replayed with gateway webhooks replay",
              file=sys.stderr)
        return 2
    c = context()
    now = c.clock.now()
    replayed = replay_dead(c.engine, args.consumer, since=args.since or now - timedelta(hours=24),
                           until=args.until or now, now=now)
    print(f"{replayed.count} dead deliveries to {args.consumer} pending again"
          + (" (more remain: run again)" if replayed.more else ""))
    return 0
