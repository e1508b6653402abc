"""``gateway funding show|set|topup``: funders' funding accounts from the terminal.

``show`` prints every funder's terms, counters and exposure as a table (``--funder`` one, with
its latest events); ``set`` opens an account or changes its mode, policy or credit limit;
``topup`` records money received as points of headroom. Every change is a ``funding_events``
row naming its actor (``--actor``, default ``cli:$USER``). Points throughout (docs/funding.md);
money columns value them at the funder's price now."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from gateway.core.errors import DomainError
from gateway.promotions import funding
from gateway.settlement import exposure
from gateway.settlement.cli import Context
from gateway.settlement.render import major, table

HEADERS = ["funder", "mode", "policy", "limit", "funded", "issued", "reversed", "exposure",
           "left", "alerts", "exposure money"]


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    def command(run: Callable[[argparse.Namespace, Context, TextIO], None]) -> Any:
        def func(args: argparse.Namespace) -> int:
            try:
                run(args, load_context(), out or sys.stdout)
                return 0
            except DomainError as error:
                where = f" ({error.field})" if error.field else ""
                print(f"error{where}: {error.message}", file=sys.stderr)
                return 2
        return func

    group = subparsers.add_parser("funding", help="funders' prepaid balances and credit limits")
    cmds = group.add_subparsers(dest="funding_command", required=True)
    show = cmds.add_parser("show", help="every funder's funding and exposure")
    show.add_argument("--funder", default=None, help="one funder, with its latest events")
    show.set_defaults(func=command(_show))
    set_ = cmds.add_parser("set", help="open a funding account or change its terms")
    set_.add_argument("--funder", required=True, help="a partner id, or coalition")
    set_.add_argument("--mode", choices=[m.value for m in funding.FundingMode], default=None)
    set_.add_argument("--policy", choices=[p.value for p in funding.FundingPolicy],
                      default=None)
    set_.add_argument("--limit", type=int, default=None, help="credit limit in points")
    set_.add_argument("--actor", default=None)
    set_.set_defaults(func=command(_set))
    topup = cmds.add_parser("topup", help="record money received, as points of headroom")
    topup.add_argument("--funder", required=True)
    topup.add_argument("--points", type=int, required=True)
    topup.add_argument("--note", default=None)
    topup.add_argument("--actor", default=None)
    topup.set_defaults(func=command(_topup))


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else f"cli:{getpass.getuser()}"


def _show(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    cur = ctx.settings.settlement_currency
    now = ctx.clock.now()
    if args.funder:
        rows = [exposure.one_funder(ctx.engine, ctx.rules, cur, now, args.funder)]
    else:
        rows = exposure.funder_exposure(ctx.engine, ctx.rules, cur, now)
    if not rows:
        out.write("no funder has a funding account (every funder is unlimited)\n")
        return
    out.write(table(HEADERS, [_row(x, cur) for x in rows]) + "\n")
    if args.funder:
        from gateway.db.uow import UnitOfWork

        with UnitOfWork(ctx.engine, write=False) as uow:
            found = funding.events(uow.conn, args.funder, limit=20)
        out.write("\n" + table(["at", "actor", "event", "points", "detail"], [
            [e["at"].isoformat() if hasattr(e["at"], "isoformat") else str(e["at"]),
             str(e["actor"]), str(e["kind"]), str(e["points"]), str(e["detail"])]
            for e in found]) + "\n")


def _set(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    found = exposure.set_terms(ctx.engine, ctx.clock, args.funder, mode=args.mode,
                               policy=args.policy, limit_points=args.limit, actor=_actor(args))
    out.write(table(HEADERS, [_row(exposure.one_funder(
        ctx.engine, ctx.rules, ctx.settings.settlement_currency, ctx.clock.now(),
        found.funder), ctx.settings.settlement_currency)]) + "\n")


def _topup(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    found = exposure.top_up(ctx.engine, ctx.clock, args.funder, args.points,
                            actor=_actor(args), note=args.note)
    out.write(table(HEADERS, [_row(exposure.one_funder(
        ctx.engine, ctx.rules, ctx.settings.settlement_currency, ctx.clock.now(),
        found.funder), ctx.settings.settlement_currency)]) + "\n")


def _row(x: exposure.FunderExposure, currency: str) -> list[str]:
    f = x.funding
    money = "-" if x.exposure_minor is None else f"{major(x.exposure_minor)} {currency}"
    return [f.funder, str(f.mode), str(f.policy), str(f.limit_points), str(f.funded_points),
            str(f.issued_points), str(f.reversed_points), str(f.exposure_points),
            str(f.left_points), str(f.alerts), money]
