"""Admin command ``members import-links FILE.csv``: links from a legacy program (see
:mod:`gateway.members.legacy`). ``register(subparsers, load_context)`` adds it to the gateway's
parser; the context (engine, clock) is loaded only when the command runs."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.members.legacy import LegacyImportInvalid, import_links


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...


def register(subparsers: Any, load_context: Callable[[], Context]) -> None:
    members = subparsers.add_parser("members", help="coalition members").add_subparsers(
        dest="members_command", required=True)
    importer = members.add_parser(
        "import-links", help="import links from a legacy program (CSV: partner_id, "
        "customer_id, card_number); all or nothing, each link in the audit log")
    importer.add_argument("file", type=Path)
    importer.add_argument("--actor", default=None,
                          help="who imports (recorded in the audit; default: the OS user)")

    def run(args: argparse.Namespace) -> int:
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except OSError as error:
            print(f"error: cannot read {args.file}: {error.strerror}", file=sys.stderr)
            return 2
        context = load_context()
        actor = f"admin:{args.actor or getpass.getuser()}"
        try:
            result = import_links(context.engine, context.clock, text, actor=actor)
        except LegacyImportInvalid as invalid:
            print(f"error: {args.file}: {len(invalid.errors)} error(s); nothing was imported",
                  file=sys.stderr)
            for line in invalid.errors:
                print(f"  {line}", file=sys.stderr)
            return 2
        print(f"{len(result.linked)} links imported, {len(result.already)} already there")
        return 0

    importer.set_defaults(func=run)
