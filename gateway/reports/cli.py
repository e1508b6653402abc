"""``gateway reports programme|campaign``: the effectiveness reports from the terminal.

``programme --start --end`` prints the summary, the partners' flows and outstanding points and
the cohort table (``--csv``: the CSV instead; ``--html FILE``: also a self-contained page), with
each scan named on stderr as it starts (the scans of a large ledger take seconds).
``campaign [ID] [--partner P]``: one campaign, or every campaign (a partner's only with
``--partner``), with the uplift against its holdout group. The CLI is the coalition's (admin's)
view: it reads every item and the programme-wide figures (decision 034)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.cli import domain_command
from gateway.core.clock import Clock
from gateway.ledger.context import RuleSource
from gateway.reports import render, service
from gateway.settings import Settings
from gateway.settlement.model import Period


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def rules(self) -> RuleSource: ...


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    group = subparsers.add_parser("reports", help="programme and campaign effectiveness")
    cmds = group.add_subparsers(dest="reports_command", required=True)
    programme = cmds.add_parser("programme", help="the programme report for [start, end)")
    programme.add_argument("--start", required=True, type=_utc, help="ISO 8601, e.g. 2026-01-01Z")
    programme.add_argument("--end", required=True, type=_utc, help="exclusive end")
    programme.add_argument("--csv", action="store_true", help="print CSV, not tables")
    programme.add_argument("--html", default=None, help="also write a self-contained HTML file")
    programme.set_defaults(func=domain_command(_programme, load_context, out))
    campaign = cmds.add_parser("campaign", help="a campaign's effectiveness (all: no id)")
    campaign.add_argument("campaign_id", nargs="?", default=None)
    campaign.add_argument("--partner", default=None, help="only this partner's campaigns")
    campaign.add_argument("--kind", choices=("campaign", "challenge", "draw"), default="campaign",
                          help="what the id names (default: a campaign)")
    campaign.add_argument("--csv", action="store_true", help="print CSV, not tables")
    campaign.add_argument("--html", default=None, help="also write a self-contained HTML file")
    campaign.set_defaults(func=domain_command(_campaign, load_context, out))


def _steps(stream: TextIO) -> Callable[[str], None]:
    started = time.monotonic()

    def step(what: str) -> None:
        stream.write(f"[{time.monotonic() - started:6.1f} s] {what}\n")
        stream.flush()
    return step


def _programme(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    report = service.programme_report(ctx.engine, Period(args.start, args.end), None,
                                      _steps(sys.stderr))
    out.write(render.programme_csv(report) if args.csv else render.programme_table(report) + "\n")
    if args.html:
        Path(args.html).write_text(render.programme_html(report), encoding="utf-8")
    return 0


def _campaign(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    currency, now = ctx.settings.settlement_currency, ctx.clock.now()
    if args.campaign_id:
        found = [service.item_effectiveness(ctx.engine, ctx.rules, currency, now, args.partner,
                                            args.campaign_id, args.kind)]
    else:
        found = service.all_effectiveness(ctx.engine, ctx.rules, currency, now, args.partner,
                                          args.kind)
    out.write(render.effectiveness_csv(found) if args.csv
              else render.effectiveness_table(found) + "\n")
    if args.html:
        Path(args.html).write_text(render.effectiveness_html(found), encoding="utf-8")
    return 0


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone offset, e.g. 2026-01-01T00:00:00Z")
    return value
