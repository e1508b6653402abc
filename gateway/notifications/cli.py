"""Operator commands ``gateway notify expiring|birthdays|send``: the scheduled jobs that write
notifications, and the sender of their emails. Each prints its progress to stderr and a
summary to stdout; each is safe to run again (nothing is notified or sent twice)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.cli import domain_commands
from gateway.core.clock import Clock
from gateway.notifications import jobs, mail
from gateway.settings import Settings


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def settings(self) -> Settings: ...


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    command = domain_commands(load_context, out)

    group = subparsers.add_parser("notify", help="member notifications (docs/notifications.md)"
                                  ).add_subparsers(dest="notify_command", required=True)
    expiring = group.add_parser("expiring", help="tell members of points expiring within 30 "
                                "and 7 days (daily; once per window and expiry day)")
    expiring.add_argument("--days", type=int, choices=sorted(jobs.WINDOWS), default=None,
                          help="one window only (default: both)")
    expiring.add_argument("--batch", type=int, default=jobs.BATCH)
    expiring.set_defaults(func=command(_expiring))
    birthdays = group.add_parser("birthdays", help="greet members whose birthday is today "
                                 "(daily; once a year; with marketing consent)")
    birthdays.add_argument("--batch", type=int, default=jobs.BATCH)
    birthdays.set_defaults(func=command(_birthdays))
    send = group.add_parser("send", help="send the queued notification emails")
    send.add_argument("--batch", type=int, default=mail.BATCH)
    send.set_defaults(func=command(_send))


def _progress(label: str) -> Callable[[int, int], None]:
    def show(scanned: int, notified: int) -> None:
        sys.stderr.write(f"\r{label}: {scanned} scanned, {notified} notified")
        sys.stderr.flush()
    return show


def _expiring(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    for days in [args.days] if args.days else sorted(jobs.WINDOWS, reverse=True):
        done = jobs.expiring(context.engine, context.clock, days, batch=args.batch,
                             progress=_progress(f"expiring in {days} days"))
        sys.stderr.write("\n")
        out.write(f"expiring in {days} days: {done.scanned} lots scanned, "
                  f"{done.notified} members notified\n")
    return 0


def _birthdays(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    done = jobs.birthdays(context.engine, context.clock, batch=args.batch,
                          progress=_progress("birthdays"))
    sys.stderr.write("\n")
    out.write(f"birthdays: {done.scanned} members scanned, {done.notified} greeted\n")
    return 0


def _send(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    def show(run: mail.SendRun) -> None:
        sys.stderr.write(f"\rsent {run.sent}, retrying {run.retried}, failed {run.failed}")
        sys.stderr.flush()

    done = mail.send_pending(context.engine, context.clock, context.settings.mail,
                             batch=args.batch, progress=show)
    sys.stderr.write("\n")
    out.write(f"emails sent: {done.sent}, to retry: {done.retried}, failed: {done.failed}\n")
    return 0
