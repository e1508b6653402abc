"""``gateway settlement report|close|reconcile|statement|export``: finance from the terminal.

``register(subparsers, load_context)`` adds the commands, like ``gateway.auth.cli``;
``load_context()`` runs only when a command runs and returns an object with ``engine``,
``settings``, ``clock`` and ``rules``. Reports print as terminal tables (default), CSV or JSON,
and optionally as a self-contained HTML file; long runs draw a progress bar on stderr.
``reconcile`` exits 1 when the statement and the ledger differ (like ``gateway verify``);
``export --format json`` writes exactly the hashed bytes (``sha256sum`` equals the hash)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.core.errors import DomainError
from gateway.ledger.context import RuleSource
from gateway.settings import Settings
from gateway.settlement import render, service
from gateway.settlement.model import Period
from gateway.settlement.reconcile import reconcile, statement_csv


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def rules(self) -> RuleSource: ...


def progress_bar(stream: TextIO) -> Callable[[int, int], None]:
    def draw(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()
    return draw


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    def command(run: Callable[[argparse.Namespace, Context, TextIO], int | None]) -> Any:
        def func(args: argparse.Namespace) -> int:
            try:
                return run(args, load_context(), out or sys.stdout) or 0
            except DomainError as error:
                print(f"error: {error.message}", file=sys.stderr)
                return 2
        return func

    group = subparsers.add_parser("settlement", help="settle, close and reconcile periods")
    cmds = group.add_subparsers(dest="settlement_command", required=True)
    report = cmds.add_parser("report", help="the report for [start, end)")
    _period(report)
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument("--partner", default=None, help="only this partner's statement")
    report.add_argument("--html", default=None, help="also write a self-contained HTML file")
    report.add_argument("--recompute", action="store_true",
                        help="a closed period: compute it again from the ledger and check it "
                             "reproduces the stored hash (a closed period is otherwise read "
                             "from its snapshot)")
    report.set_defaults(func=command(_report))
    close = cmds.add_parser("close", help="close [start, end) for good (irreversible)")
    _period(close)
    close.add_argument("--actor", default=None, help="who closes (default: cli:$USER)")
    close.set_defaults(func=command(_close))
    rec = cmds.add_parser("reconcile", help="compare a partner's CSV statement with the ledger")
    _period(rec)
    rec.add_argument("--partner", required=True)
    rec.add_argument("--file", required=True, help="the statement CSV (see docs/settlement.md)")
    rec.add_argument("--format", choices=("table", "csv", "json"), default="table")
    rec.set_defaults(func=command(_reconcile))
    statement = cmds.add_parser("statement", help="a partner's own ledger lines as a statement "
                                "CSV (the format reconcile reads)")
    _period(statement)
    statement.add_argument("--partner", required=True)
    statement.set_defaults(func=command(_statement))
    rollup = cmds.add_parser("rollup", help="store the exact sums of every final day (ended "
                             "15 minutes ago) not stored yet; reports read them (decision 016)")
    rollup.add_argument("--start", type=_utc, default=None,
                        help="default: the first day holding an operation")
    rollup.add_argument("--end", type=_utc, default=None, help="default: now")
    rollup.set_defaults(func=command(_rollup))
    export = cmds.add_parser("export", help="a closed period's snapshot (JSON) or lines (CSV)")
    _period(export)
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.set_defaults(func=command(_export))


def _period(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", required=True, type=_utc, help="ISO 8601, e.g. 2026-01-01Z")
    parser.add_argument("--end", required=True, type=_utc, help="exclusive end")


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone (Z or +00:00)")
    return value


def _report(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    period = Period(args.start, args.end)
    compute = service.recompute_closed if args.recompute else service.settlement_report
    report = compute(ctx.engine, ctx.rules, period, ctx.settings.settlement_currency,
                     progress=progress_bar(sys.stderr))
    render_as = {"table": render.report_text, "csv": render.report_csv,
                 "json": render.report_json}[args.format]
    out.write(render_as(report, args.partner))
    if args.html:
        from gateway.settlement.html import report_html

        Path(args.html).write_text(report_html(report, args.partner), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)


def _close(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    actor = str(args.actor) if args.actor else f"cli:{getpass.getuser()}"
    closed = service.close_period(ctx.engine, ctx.rules, ctx.clock, Period(args.start, args.end),
                                  ctx.settings.settlement_currency, actor=actor,
                                  progress=progress_bar(sys.stderr))
    out.write(render.table(["period", "closed_at", "closed_by", "sha256"], [
        [closed.id, closed.closed_at.isoformat(), closed.closed_by, closed.sha256]]) + "\n")


def _rollup(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    start, end = args.start, args.end
    if start is None or end is None:
        span = service.ledger_span(ctx.engine)
        if span is None:
            out.write("rolled up 0 days (the ledger holds no operation)\n")
            return
        start = start or span.start
        end = end or max(span.start + timedelta(days=1), ctx.clock.now().replace(microsecond=0))
    done = service.roll_up(ctx.engine, ctx.clock, Period(start, end),
                           progress=progress_bar(sys.stderr))
    out.write(f"rolled up {done} days\n")


def _reconcile(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    text = Path(args.file).read_text(encoding="utf-8")
    result = reconcile(ctx.engine, args.partner, Period(args.start, args.end), text)
    code = 1 if result.differs else 0
    if args.format == "csv":
        out.write(result.to_csv())
        return code
    totals = result.totals()
    if args.format == "json":
        out.write(json.dumps({
            "totals": {k: {"count": v.count, "points": v.points, "amount_minor": v.amount_minor}
                       for k, v in totals.items()},
            "mismatched": [{"partner_reference": m.statement.partner_reference,
                            "line": m.statement.line,
                            "differences": [[d.field, d.statement, d.ledger]
                                            for d in m.differences]}
                           for m in result.mismatched],
            "missing_in_ledger": [{"partner_reference": x.partner_reference, "line": x.line}
                                  for x in result.missing_in_ledger],
            "missing_in_statement": [x.partner_reference for x in result.missing_in_statement],
        }, indent=2, sort_keys=True) + "\n")
        return code
    out.write(render.table(["status", "lines", "points", "amount_minor"], [
        [k, str(v.count), str(v.points), str(v.amount_minor)] for k, v in totals.items()]) + "\n")
    rows = [[str(m.statement.line), m.statement.partner_reference, d.field, d.statement,
             d.ledger] for m in result.mismatched for d in m.differences]
    rows += [[str(x.line), x.partner_reference, "missing in ledger", "", ""]
             for x in result.missing_in_ledger]
    rows += [["-", x.partner_reference, "missing in statement", "", ""]
             for x in result.missing_in_statement]
    if rows:
        out.write("\n" + render.table(["line", "reference", "field", "statement", "ledger"],
                                       rows) + "\n")
    return code


def _statement(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    text, count = statement_csv(ctx.engine, args.partner, Period(args.start, args.end))
    out.write(text)
    print(f"{count} lines", file=sys.stderr)


def _export(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    period = Period(args.start, args.end)
    body, digest = service.snapshot(ctx.engine, period.id)
    if args.format == "json":
        out.write(body)  # the hashed bytes exactly: no newline added
        print(f"sha256 {digest}", file=sys.stderr)
        return
    report = service.settlement_report(ctx.engine, ctx.rules, period,
                                       ctx.settings.settlement_currency,
                                       progress=progress_bar(sys.stderr))
    out.write(render.report_csv(report))
