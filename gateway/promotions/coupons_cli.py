"""``gateway coupons issue|import|show``: a partner's coupon codes from the terminal (the
operators' door to what ``issueCoupons``, ``importCoupons`` and ``coupon`` do over GraphQL;
docs/campaigns.md, decision 025).

``issue`` prints the generated codes, one a line (the only time they are shown: only their
HMAC is kept); ``import`` reads codes from a file, one a line (blank lines and ``#`` comments
skipped); ``show`` prints one code's status and uses. Every command acts for ``--partner``."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.cli import domain_commands
from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.promotions import coupon_issue


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    command = domain_commands(load_context, out)

    group = subparsers.add_parser("coupons", help="coupon codes of a partner's campaigns")
    cmds = group.add_subparsers(dest="coupons_command", required=True)
    issue = cmds.add_parser("issue", help="generate codes (printed once, one a line)")
    issue.add_argument("campaign", help="the partner's campaign id (with couponPresented)")
    issue.add_argument("--count", type=int, required=True)
    _terms(issue)
    issue.set_defaults(func=command(_issue))
    imported = cmds.add_parser("import", help="import codes from a file, one a line")
    imported.add_argument("campaign")
    imported.add_argument("file", type=Path)
    _terms(imported)
    imported.set_defaults(func=command(_import))
    show = cmds.add_parser("show", help="one code's status and uses")
    show.add_argument("code")
    show.add_argument("--partner", required=True)
    show.set_defaults(func=command(_show))


def _terms(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partner", required=True)
    parser.add_argument("--max-uses", type=int, default=1)
    parser.add_argument("--per-member", type=int, default=None)
    parser.add_argument("--expires", default=None, help="ISO 8601 with its offset")
    parser.add_argument("--customer", default=None, help="a personal coupon: this customer id")
    parser.add_argument("--actor", default=None, help="who (default cli:$USER)")


def _terms_of(args: argparse.Namespace) -> coupon_issue.CouponTerms:
    expires = None
    if args.expires is not None:
        try:
            expires = datetime.fromisoformat(args.expires)
        except ValueError:
            raise InvalidInput("--expires is not an ISO 8601 time", field="expiresAt") from None
    return coupon_issue.CouponTerms(args.campaign, args.max_uses, args.per_member, expires)


def _actor(args: argparse.Namespace) -> str:
    return args.actor or f"cli:{getpass.getuser()}"


def _issue(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    done = coupon_issue.issue_coupons(ctx.engine, args.partner, _terms_of(args), args.count,
                                      customer_id=args.customer, now=ctx.clock.now(),
                                      actor=_actor(args))
    for code in done.codes:
        print(code, file=out)


def _import(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {args.file}: {error.strerror}", field="file") from None
    codes = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    done = coupon_issue.import_coupons(ctx.engine, args.partner, _terms_of(args), codes,
                                       customer_id=args.customer, now=ctx.clock.now(),
                                       actor=_actor(args))
    print(f"imported {done.count} codes for {done.campaign_id}", file=out)


def _show(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    now = ctx.clock.now()
    v = coupon_issue.show_coupon(ctx.engine, args.partner, args.code, now)
    limit = "none" if v.per_member_limit is None else str(v.per_member_limit)
    expires = "never" if v.expires_at is None else v.expires_at.isoformat()
    print(f"...{v.code_hint} {v.campaign_id} {v.status(now)} uses {v.uses}/{v.max_uses} "
          f"per-member {limit} expires {expires}{' personal' if v.personal else ''}", file=out)
