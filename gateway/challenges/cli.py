"""Operator commands ``gateway challenges sync|define|end|list``: the coalition's door to its
own challenges (``sync`` stores ``<catalog>/coalition/challenges.toml``) and to a partner's,
acting as its owner with ``--owner``. A ``define`` file is TOML or JSON holding one challenge
with the catalog's keys (docs/challenges.md), read by the same strict parser as the file and
the partner API. ``register(subparsers, load_context)`` adds the group; the context is loaded
only when a command runs."""

from __future__ import annotations

import argparse
import getpass
import json
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.challenges import parsing, service
from gateway.challenges.model import COALITION, Challenge
from gateway.core.cli import domain_commands
from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def settings(self) -> Any: ...


def register(subparsers: Any, load_context: Callable[[], Context], *,
             out: TextIO | None = None) -> None:
    command = domain_commands(load_context, out)

    group = subparsers.add_parser("challenges", help="challenges, streaks and badges "
                                  "(docs/challenges.md)").add_subparsers(
        dest="challenges_command", required=True)
    sync = group.add_parser("sync", help="store the coalition's challenges file (new ones, and "
                            "changes to ones not started yet)")
    sync.add_argument("--file", type=Path, default=None,
                      help="default: <catalog>/coalition/challenges.toml")
    sync.add_argument("--actor", default=None, help="who (recorded; default: the OS user)")
    sync.set_defaults(func=command(_sync))
    define = group.add_parser("define", help="define one challenge from a TOML or JSON file")
    define.add_argument("file", type=Path)
    _owner(define)
    define.set_defaults(func=command(_define))
    end = group.add_parser("end", help="end a challenge (default now; never in the past)")
    end.add_argument("challenge_id")
    end.add_argument("--at", type=datetime.fromisoformat, default=None,
                     help="RFC 3339 time with its offset")
    _owner(end)
    end.set_defaults(func=command(_end))
    listing = group.add_parser("list", help="an owner's challenges with member counts")
    listing.add_argument("--owner", default=COALITION)
    listing.set_defaults(func=command(_list))


def _owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", default=COALITION,
                        help="whose challenge: a partner id, or coalition (default)")
    parser.add_argument("--actor", default=None, help="who (recorded; default: the OS user)")


def _actor(args: argparse.Namespace) -> str:
    return f"admin:{getattr(args, 'actor', None) or getpass.getuser()}"


def _line(c: Challenge) -> str:
    window = f"rolling {c.days} days" if c.days else str(c.window)
    return (f"{c.id} v{c.version} ({c.owner}): {c.target} {c.count} per {window}, "
            f"+{c.bonus_points} points, badge {c.badge}, from {c.starts_at.isoformat()} "
            f"to {c.ends_at.isoformat() if c.ends_at else '-'}")


def _sync(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    path = args.file or service.catalog_path(Path(context.settings.catalog_dir))
    stored = service.sync_catalog(context.engine, path, actor=_actor(args),
                                  now=context.clock.now())
    for c in stored:
        out.write(_line(c) + "\n")
    out.write(f"{len(stored)} coalition challenges in {path}\n")
    return 0


def _define(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        raw = json.loads(text) if args.file.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as error:
        raise InvalidInput(f"cannot read {args.file}: {error}", field="file") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{args.file} holds one challenge object", field="file")
    stored = service.define(context.engine, raw, owner=args.owner, actor=_actor(args),
                            now=context.clock.now(), field_name=parsing.snake)
    out.write(_line(stored) + "\n")
    return 0


def _end(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    stored = service.end(context.engine, args.owner, args.challenge_id, args.at,
                         actor=_actor(args), now=context.clock.now())
    out.write(_line(stored) + "\n")
    return 0


def _list(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    found = service.owned(context.engine, args.owner, context.clock.now())
    for o in found:
        out.write(f"{_line(o.challenge)}; members in progress {o.members_in_progress}, "
                  f"completed {o.members_completed}\n")
    if not found:
        out.write(f"no challenges of {args.owner}\n")
    return 0
