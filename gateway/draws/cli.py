"""``gateway draws create|close|show|verify``: prize draws from the terminal (the operators'
door; partners use ``createDraw`` and ``closeDraw`` over GraphQL). The CLI also makes the
coalition's own draws (``--owner coalition``), which may count purchases at any partners.

``verify`` checks a published proof, from the database (a draw id) or from a file saved from
``GET /draws/<id>/proof``: SHA-256 of the seed against the commitment, the entry list against
its hash, and the winners recomputed. Exit 0 when it verifies, 1 with the reasons when not."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.cli import domain_commands
from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.core.money import Money
from gateway.draws import service
from gateway.draws.model import DrawTerms, Prize
from gateway.ledger.context import RuleSource


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def rules(self) -> RuleSource: ...


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    command = domain_commands(load_context, out)

    group = subparsers.add_parser("draws", help="verifiably fair prize draws (docs/draws.md)")
    cmds = group.add_subparsers(dest="draws_command", required=True)
    create = cmds.add_parser("create", help="create a draw; prints its id and commitment")
    create.add_argument("--owner", required=True, help="a partner id, or 'coalition'")
    create.add_argument("--name", required=True)
    create.add_argument("--opens", required=True, help="ISO 8601 with its offset")
    create.add_argument("--closes", required=True, help="ISO 8601 with its offset")
    create.add_argument("--prize", action="append", default=[], required=True,
                        help="NAME or NAME=QUANTITY, in draw order (repeat)")
    create.add_argument("--max-per-member", type=int, required=True)
    create.add_argument("--entries-per-purchase", type=int, default=None)
    create.add_argument("--partners", default="", help="comma list (coalition draws; none: "
                        "every partner)")
    create.add_argument("--min-spend", default=None, help="e.g. 50000UAH (minor units)")
    create.add_argument("--points-per-entry", type=int, default=None)
    create.add_argument("--several-prizes-per-member", action="store_true")
    create.add_argument("--actor", default=None, help="who (default cli:$USER)")
    create.set_defaults(func=command(_create))
    close = cmds.add_parser("close", help="close a draw past its close time; prints winners")
    close.add_argument("draw")
    close.set_defaults(func=command(_close))
    show = cmds.add_parser("show", help="a draw's terms, entries and result")
    show.add_argument("draw")
    show.set_defaults(func=command(_show))
    verify = cmds.add_parser("verify", help="check a draw's published proof")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("draw", nargs="?", help="a draw id (its proof from the database)")
    source.add_argument("--file", type=Path, help="a proof saved from /draws/<id>/proof")
    verify.set_defaults(func=command(_verify))


def _time(value: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", field=field) from None


def _prize(text: str) -> Prize:
    name, _, quantity = text.rpartition("=") if "=" in text else (text, "", "1")
    if not quantity.isdigit():
        raise InvalidInput(f"prize {text!r}: the quantity after '=' is not a number",
                           field="prizes")
    return Prize(name, int(quantity))


def _money(text: str | None) -> Money | None:
    if text is None:
        return None
    digits, currency = text[:-3], text[-3:]
    if not digits.lstrip("-").isdigit():
        raise InvalidInput("--min-spend is minor units then the currency, e.g. 50000UAH",
                           field="minSpend")
    try:
        return Money(int(digits), currency)
    except ValueError as error:
        raise InvalidInput(str(error), field="minSpend") from None


def _create(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    owner = None if args.owner == "coalition" else args.owner
    terms = DrawTerms(
        name=args.name, opens_at=_time(args.opens, "opensAt"),
        closes_at=_time(args.closes, "closesAt"),
        prizes=tuple(_prize(p) for p in args.prize),
        max_entries_per_member=args.max_per_member,
        entries_per_purchase=args.entries_per_purchase,
        purchase_partners=tuple(p for p in args.partners.split(",") if p),
        min_spend=_money(args.min_spend), points_per_entry=args.points_per_entry,
        one_prize_per_member=not args.several_prizes_per_member)
    made = service.create_draw(ctx.engine, ctx.rules, ctx.clock.now(), owner, terms,
                               args.actor or f"cli:{getpass.getuser()}")
    print(f"{made.id} commitment {made.commitment}", file=out)


def _close(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    done = service.close_draw(ctx.engine, ctx.clock.now(), args.draw, service.EVERY)
    print(f"{done.draw.id} closed: {sum(e.entries for e in done.entrants)} entries, "
          f"{len(done.entrants)} entrants, entry list hash {done.draw.entry_list_hash}",
          file=out)
    print(f"seed {done.draw.seed}", file=out)
    for w in done.winners:
        print(f"{w.position}\t{w.prize}\t{w.entrant}", file=out)


def _show(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    s = service.show_draw(ctx.engine, args.draw, service.EVERY)
    d = s.draw
    prizes = ", ".join(f"{p.name} x{p.quantity}" for p in d.prizes)
    print(f"{d.id} {d.name!r} owner {d.owner_partner_id or 'coalition'} {d.status}", file=out)
    print(f"opens {d.opens_at.isoformat()} closes {d.closes_at.isoformat()}", file=out)
    print(f"prizes {prizes}; {s.entries} entries from {s.entrants} members", file=out)
    print(f"commitment {d.commitment}", file=out)
    if d.status == "closed":
        print(f"seed {d.seed}\nentry list hash {d.entry_list_hash}", file=out)


def _verify(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    if args.file is not None:
        try:
            body = json.loads(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InvalidInput(f"cannot read a proof from {args.file}: {error}",
                               field="file") from None
    else:
        body = service.proof(ctx.engine, args.draw)
    problems = service.verify_document(body)
    for problem in problems:
        print(f"FAILED: {problem}", file=out)
    if problems:
        return 1
    print(f"verified: {body['draw_id']}: the seed matches the commitment, the entry list its "
          f"hash, and the {len(body['winners'])} winners recompute", file=out)
    return 0
