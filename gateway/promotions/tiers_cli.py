"""Operator commands ``gateway tiers sync|show`` and ``gateway segments refresh|list``.

``tiers sync`` publishes the tier programme's benefits as campaigns (``tier_sync``); ``tiers
show`` prints the programme and, with ``--member``, a member's tier. ``segments refresh``
recomputes every segment over consenting members, printing progress to stderr; ``segments
list --owner`` prints a partner's segments with their (suppressed) counts, never members.
``register(subparsers, load_context)`` adds both groups; the context is loaded only when a
command runs."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.cli import domain_commands
from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.uow import UnitOfWork
from gateway.promotions import segments, tier_sync, tiers
from gateway.promotions.tier_config import load_programme, tiers_path


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def settings(self) -> Any: ...


Command = Callable[[argparse.Namespace, Context, TextIO], int]


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    command = domain_commands(load_context, out)

    group = subparsers.add_parser("tiers", help="the coalition's tier programme "
                                  "(docs/campaigns.md)").add_subparsers(
        dest="tiers_command", required=True)
    sync = group.add_parser("sync", help="publish the programme's multipliers and discount "
                            "cards as campaigns (only what changed)")
    sync.add_argument("--file", type=Path, default=None,
                      help="the programme (default: <catalog>/coalition/tiers.toml)")
    sync.add_argument("--actor", default=None, help="who (recorded; default: the OS user)")
    sync.set_defaults(func=command(_sync))
    show = group.add_parser("show", help="the programme, or a member's tier")
    show.add_argument("--file", type=Path, default=None)
    show.add_argument("--member", default=None, help="a member id: print their tier now")
    show.set_defaults(func=command(_show))

    seg = subparsers.add_parser("segments", help="partners' segments for personal offers"
                                ).add_subparsers(dest="segments_command", required=True)
    refresh = seg.add_parser("refresh", help="recompute every segment over consenting members")
    refresh.add_argument("--batch", type=int, default=segments.BATCH)
    refresh.set_defaults(func=command(_refresh))
    listing = seg.add_parser("list", help="a partner's segments and member counts")
    listing.add_argument("--owner", required=True)
    listing.set_defaults(func=command(_list))


def programme_of(args: argparse.Namespace, context: Context) -> tiers.TierProgramme:
    path = args.file or tiers_path(Path(context.settings.catalog_dir))
    programme = load_programme(path)
    if programme is None:
        raise InvalidInput(f"no tier programme at {path}", field="file")
    return programme


def _sync(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    programme = programme_of(args, context)
    actor = f"admin:{args.actor or getpass.getuser()}"
    lines = tier_sync.sync(context.engine, programme, actor=actor, now=context.clock.now())
    for line in lines:
        out.write(f"{line.action} {line.campaign_id} v{line.version}\n")
    changed = sum(1 for line in lines if line.action != "unchanged")
    out.write(f"tier programme v{programme.version}: {changed} campaign versions written\n")
    return 0


def _show(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    programme = programme_of(args, context)
    if args.member is None:
        out.write(f"tier programme v{programme.version}, window {programme.window_months} "
                  "months\n")
        for tier in programme.tiers:
            out.write(f"{tier.id}\t{tier.name}\t{tier.threshold}\n")
        return 0
    with UnitOfWork(context.engine, write=False) as uow:
        found = tiers.status_at(uow.conn, programme, args.member, context.clock.now())
    until = found.valid_until.isoformat() if found.valid_until else "-"
    out.write(f"{found.tier.name}: {found.qualifying_points} qualifying points; "
              f"valid until {until}\n")
    return 0


def _refresh(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    def show(scanned: int) -> None:
        sys.stderr.write(f"\r{scanned} members scanned")
        sys.stderr.flush()

    if args.batch < 1:
        raise InvalidInput("batch must be at least 1", field="batch")
    done = segments.refresh(context.engine, context.clock.now(), batch=args.batch,
                            progress=show)
    sys.stderr.write("\n")
    out.write(f"members scanned: {done.members_scanned}\n"
              f"members consenting: {done.members_consenting}\n")
    for segment_id, count in sorted(done.counts.items()):
        out.write(f"{segment_id}: {count}\n")
    return 0


def _list(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    for s in segments.listed(context.engine, args.owner):
        out.write(f"{s.id}\t{s.shown_count}\t{s.name}\n")
    return 0
