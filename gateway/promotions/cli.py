"""Operator commands ``gateway campaigns publish|end|list|show|dry-run`` and
``gateway rules dry-run``: the coalition's door to campaigns (coalition-wide ones are made
only here) and to a partner's, acting as its owner with ``--owner``.

A campaign file is TOML or JSON with the same shape and field names as the GraphQL
``CampaignInput`` (docs/campaigns.md); it goes through the same parser
(``gateway.promotions.manage.parse``). ``register(subparsers, load_context)`` adds the group;
the context (engine, clock, rule book) is loaded only when a command runs."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.core.cli import domain_commands
from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput, NotFound
from gateway.promotions import codec, dryrun, manage
from gateway.promotions import model as m
from partners.config import RuleVersion


class Rules(Protocol):
    def rule(self, partner_id: str, version: int) -> RuleVersion: ...


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def rules(self) -> Rules: ...


Command = Callable[[argparse.Namespace, Context, TextIO], int]


def read_file(path: Path) -> Mapping[str, Any]:
    """A campaign (or rule) file: ``.json`` is JSON, anything else TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", field="file") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise InvalidInput(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}"
                           f": {error}", field="file") from None
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{path} holds one campaign object", field="file")
    return data


def register(subparsers: Any, load_context: Callable[[], Context], *, rules: Any,
             out: TextIO | None = None) -> None:
    """Add ``campaigns`` to ``subparsers``, and ``dry-run`` to the ``rules`` group's own
    subparsers."""
    command = domain_commands(load_context, out)

    group = subparsers.add_parser("campaigns", help="campaigns (docs/campaigns.md)"
                                  ).add_subparsers(dest="campaigns_command", required=True)
    publish = group.add_parser("publish", help="create a campaign from a TOML/JSON file, or "
                               "publish its next version if its id exists")
    publish.add_argument("file", type=Path)
    _owner(publish)
    publish.set_defaults(func=command(_publish))
    end = group.add_parser("end", help="end a campaign (publishes a version with validUntil)")
    end.add_argument("campaign_id")
    end.add_argument("--at", type=datetime.fromisoformat, default=None,
                     help="ISO 8601 with offset; default now")
    _owner(end)
    end.set_defaults(func=command(_end))
    listing = group.add_parser("list", help="an owner's campaigns, latest version of each")
    _owner(listing)
    listing.set_defaults(func=command(_list))
    show = group.add_parser("show", help="every version of a campaign, as stored (JSON lines)")
    show.add_argument("campaign_id")
    _owner(show)
    show.set_defaults(func=command(_show))
    dry = group.add_parser("dry-run", help="what a draft would have issued and cost over a "
                           "partner's last days of earns; writes nothing")
    dry.add_argument("file", type=Path)
    dry.add_argument("--partner", required=True, help="whose earns to replay")
    dry.add_argument("--days", type=int, default=90)
    dry.add_argument("--owner", default=None, help="the draft's owner (default: --partner)")
    dry.set_defaults(func=command(_dry_run))
    rule_dry = rules.add_parser("dry-run", help="quote a partner's last days of earns under a "
                                "draft rule version (TOML: one [[rules]] table's body); "
                                "writes nothing")
    rule_dry.add_argument("file", type=Path)
    rule_dry.add_argument("--partner", required=True)
    rule_dry.add_argument("--days", type=int, default=90)
    rule_dry.set_defaults(func=command(_rules_dry_run))


def _owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", default=m.COALITION,
                        help="whose campaign: a partner id, or coalition (default)")
    parser.add_argument("--actor", default=None, help="who (recorded; default: the OS user)")


def _actor(args: argparse.Namespace) -> str:
    return f"admin:{getattr(args, 'actor', None) or getpass.getuser()}"


def _publish(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    raw = read_file(args.file)
    draft = manage.parse(raw, owner=args.owner)
    now = context.clock.now()
    try:
        stored = manage.publish(context.engine, args.owner, draft.id, raw, actor=_actor(args),
                                now=now)
    except NotFound:
        stored = manage.create(context.engine, draft, actor=_actor(args), now=now)
    c = stored.campaign
    out.write(f"published {c.id} v{c.version} ({c.owner}), in force "
              f"{c.valid_from.isoformat()} .. {c.valid_until.isoformat() if c.valid_until else '-'}"
              "\n")
    return 0


def _end(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    stored = manage.end(context.engine, args.owner, args.campaign_id, args.at,
                        actor=_actor(args), now=context.clock.now())
    c = stored.campaign
    out.write(f"{c.id} v{c.version} ends at {c.valid_until.isoformat() if c.valid_until else '-'}"
              "\n")
    return 0


def _list(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    after: str | None = None
    while True:
        page = manage.listed(context.engine, args.owner, 100, after)
        for p in page.campaigns:
            c = p.campaign
            until = c.valid_until.isoformat() if c.valid_until else "-"
            out.write(f"{c.id}\tv{c.version}\t{c.valid_from.isoformat()}\t{until}\t{c.name}\n")
        if not page.has_next:
            return 0
        after = page.end_cursor


def _show(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    for p in manage.versions(context.engine, args.owner, args.campaign_id):
        out.write(codec.dumps(p.campaign) + "\n")
    return 0


def _window(args: argparse.Namespace, context: Context) -> tuple[datetime, datetime]:
    if not 1 <= args.days <= 366:
        raise InvalidInput("days must be between 1 and 366", field="days")
    now = context.clock.now()
    return now - timedelta(days=args.days), now


def _progress(stream: TextIO) -> dryrun.Progress:
    def show(scanned: int) -> None:
        stream.write(f"\r{scanned} operations scanned")
        stream.flush()
    return show


def _dry_run(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    draft = manage.parse(read_file(args.file), owner=args.owner or args.partner)
    since, until = _window(args, context)
    r = dryrun.simulate_campaign(context.engine, context.rules.rule, draft,
                                 partner_id=args.partner, since=since, until=until,
                                 progress=_progress(sys.stderr))
    sys.stderr.write("\n")
    out.write(f"operations scanned: {r.operations_scanned}\n"
              f"operations matched: {r.operations_matched}\n"
              f"members reached: {r.members_reached}\n"
              f"bonus points: {r.bonus_points}\n")
    for cost in r.cost:
        out.write(f"cost: {_minor(cost.minor)} {cost.currency} (exact {cost.exact} minor)\n")
    budget = "-" if r.budget_points is None else str(r.budget_points)
    out.write(f"budget: {r.budget_used} of {budget} points\n")
    for reason, count in sorted(r.skipped.items()):
        out.write(f"skipped ({reason}): {count}\n")
    if r.unknown_facts:
        out.write(f"unknown facts (counted as not matching): {', '.join(r.unknown_facts)}; "
                  f"{r.operations_with_unknown_facts} operations needed one\n")
    return 0


def _rules_dry_run(args: argparse.Namespace, context: Context, out: TextIO) -> int:
    from partners.loader import PartnerConfigError, rule_version_from_mapping

    try:
        draft = rule_version_from_mapping(args.partner, read_file(args.file),
                                          where=str(args.file))
    except PartnerConfigError as error:
        raise InvalidInput(str(error), field="file") from None
    since, until = _window(args, context)
    r = dryrun.simulate_rule(context.engine, context.rules.rule, draft, since=since,
                             until=until, progress=_progress(sys.stderr))
    sys.stderr.write("\n")
    out.write(f"operations scanned: {r.operations_scanned}\n"
              f"points before: {r.points_before}\npoints after: {r.points_after}\n")
    for label, costs in (("cost before", r.cost_before), ("cost after", r.cost_after)):
        for cost in costs:
            out.write(f"{label}: {_minor(cost.minor)} {cost.currency}\n")
    return 0


def _minor(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"
