"""Admin commands: ``clients create|list|disable|rotate`` and ``keys rotate``.

``register(subparsers, load_context)`` adds them to the gateway's argparse parser. Each leaf
parser sets ``func(args) -> int`` (the exit code); ``load_context()`` is called only when a
command runs (no database at import or parse time) and returns an object with ``.engine``,
``.settings`` and ``.clock``. Secrets are printed once, on create and rotate, and nowhere else.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol, TextIO

from sqlalchemy import Engine

from gateway.auth.clients import ClientRegistry, CreatedClient, OAuthClient
from gateway.auth.keys import KeyStore
from gateway.auth.scopes import CLIENT_KINDS, format_scope
from gateway.auth.tokens import LEEWAY_SECONDS, MAX_TTL_SECONDS
from gateway.core.clock import Clock
from gateway.core.errors import DomainError
from gateway.settings import Settings


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...


LoadContext = Callable[[], Context]
_RETENTION_SECONDS = MAX_TTL_SECONDS + LEEWAY_SECONDS  # as in AuthService


def register(subparsers: Any, load_context: LoadContext, *, out: TextIO | None = None) -> None:
    """Add the ``clients`` and ``keys`` command groups to ``subparsers``."""

    def command(run: Callable[[argparse.Namespace, Context, TextIO], None]) -> Any:
        def func(args: argparse.Namespace) -> int:
            stream = out or sys.stdout
            try:
                run(args, load_context(), stream)
            except DomainError as error:
                print(f"error: {error.message}", file=sys.stderr)
                return 2
            return 0

        return func

    clients = subparsers.add_parser("clients", help="manage OAuth clients")
    client_cmds = clients.add_subparsers(dest="clients_command", required=True)

    create = client_cmds.add_parser("create", help="create a client; prints its secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--kind", required=True, choices=CLIENT_KINDS)
    create.add_argument("--partner", dest="partner_id", default=None, help="partner id to bind")
    create.add_argument(
        "--scope", dest="scopes", action="append", default=None,
        help="allowed scope (repeatable); default: the kind's full allowance",
    )
    create.add_argument(
        "--redirect-uri", dest="redirect_uris", action="append", default=[], metavar="URI",
        help="redirect URI for the authorization code flow (repeatable; exact match; https in "
             "production except loopback)",
    )
    _actor_option(create)
    create.set_defaults(func=command(_create))

    listing = client_cmds.add_parser("list", help="list clients")
    listing.set_defaults(func=command(_list))

    disable = client_cmds.add_parser("disable", help="disable a client; its tokens stop working")
    disable.add_argument("client_id")
    _actor_option(disable)
    disable.set_defaults(func=command(_disable))

    rotate = client_cmds.add_parser("rotate", help="replace a client's secret; prints it once")
    rotate.add_argument("client_id")
    _actor_option(rotate)
    rotate.set_defaults(func=command(_rotate))

    keys = subparsers.add_parser("keys", help="manage token signing keys")
    key_cmds = keys.add_subparsers(dest="keys_command", required=True)
    key_rotate = key_cmds.add_parser("rotate", help="new signing key; the old one still verifies")
    _actor_option(key_rotate)
    key_rotate.set_defaults(func=command(_rotate_key))


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", default=None, help="who is acting, for the audit log (default: cli:$USER)"
    )


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else f"cli:{getpass.getuser()}"


def _create(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    created = ClientRegistry(ctx.engine, ctx.clock).create(
        name=args.name,
        kind=args.kind,
        partner_id=args.partner_id,
        scopes=args.scopes,
        actor=_actor(args),
        redirect_uris=args.redirect_uris,
        production=ctx.settings.production,
    )
    _print_secret(created, out)
    if created.client.kind == "finance" and created.client.partner_id is not None:
        print(f"note: bound to partner {created.client.partner_id!r}, this client reads that "
              "partner's settlement statement only; it is not granted settlement:close "
              "(closing periods needs a coalition-wide finance client: omit --partner).", file=out)


def _list(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    rows = [_row(client) for client in ClientRegistry(ctx.engine, ctx.clock).list()]
    print_table(["client_id", "name", "kind", "partner", "status", "scopes"], rows, out)


def _disable(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    client = ClientRegistry(ctx.engine, ctx.clock).disable(args.client_id, actor=_actor(args))
    print_table(["client_id", "name", "kind", "partner", "status", "scopes"], [_row(client)], out)


def _rotate(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    created = ClientRegistry(ctx.engine, ctx.clock).rotate_secret(
        args.client_id, actor=_actor(args)
    )
    _print_secret(created, out)


def _rotate_key(args: argparse.Namespace, ctx: Context, out: TextIO) -> None:
    store = KeyStore(ctx.engine, ctx.clock, retention=timedelta(seconds=_RETENTION_SECONDS))
    key = store.rotate(actor=_actor(args))
    print_table(["kid", "alg", "created_at"], [[key.kid, "ES256", key.created_at.isoformat()]], out)
    print(f"retired keys keep verifying for {_RETENTION_SECONDS} s", file=out)


def _row(client: OAuthClient) -> list[str]:
    return [
        client.client_id,
        client.name,
        client.kind,
        client.partner_id or "-",
        "disabled" if client.disabled else "active",
        format_scope(client.allowed_scopes),
    ]


def _print_secret(created: CreatedClient, out: TextIO) -> None:
    client = created.client
    print_table(
        ["client_id", "kind", "partner", "scopes"],
        [[client.client_id, client.kind, client.partner_id or "-",
          format_scope(client.allowed_scopes)]],
        out,
    )
    if client.redirect_uris:
        print(f"redirect_uris: {' '.join(client.redirect_uris)}", file=out)
    if not created.secret:
        print("public client: no secret (authorization code with PKCE only)", file=out)
        return
    print(f"client_secret: {created.secret}", file=out)
    print("Store this secret now: it is shown once and cannot be recovered.", file=out)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
