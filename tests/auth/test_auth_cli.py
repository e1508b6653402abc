"""The admin CLI: argparse wiring, tables out, the secret printed once."""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from gateway.auth.cli import register
from gateway.auth.service import AuthService
from gateway.core.clock import FixedClock
from gateway.settings import Settings


@dataclass
class Ctx:
    engine: Engine
    settings: Settings
    clock: FixedClock


def _run(ctx: Ctx, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    parser = argparse.ArgumentParser(prog="gateway")
    register(parser.add_subparsers(dest="command", required=True), lambda: ctx, out=out)
    args = parser.parse_args(list(argv))
    code = args.func(args)
    return code, out.getvalue()


def test_clients_create_list_rotate_disable_and_keys_rotate(
    engine: Engine, settings: Settings, clock: FixedClock, audit_rows: Any, dump_database: Any
) -> None:
    ctx = Ctx(engine, settings, clock)
    code, out = _run(
        ctx, "clients", "create", "--name", "Shop POS", "--kind", "partner",
        "--partner", "shop", "--scope", "points:earn", "--actor", "cli:alice",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["client_id", "kind", "partner", "scopes"]
    client_id, kind, partner, scope = lines[2].split()
    assert (kind, partner, scope) == ("partner", "shop", "points:earn")
    assert lines[3].startswith("client_secret: ")
    secret = lines[3].removeprefix("client_secret: ")
    assert lines[4] == "Store this secret now: it is shown once and cannot be recovered."

    auth = AuthService(engine, settings, clock)
    client = auth.clients.get(client_id)
    assert client is not None and client.check_secret(secret)

    code, out = _run(ctx, "clients", "list")
    assert code == 0
    assert secret not in out
    assert out.splitlines()[2].split() == [
        client_id, "Shop", "POS", "partner", "shop", "active", "points:earn"
    ]

    code, out = _run(ctx, "clients", "rotate", client_id, "--actor", "cli:alice")
    assert code == 0
    new_secret = next(ln for ln in out.splitlines() if ln.startswith("client_secret: "))
    new_secret = new_secret.removeprefix("client_secret: ")
    client = auth.clients.get(client_id)
    assert client is not None
    assert client.check_secret(new_secret) and not client.check_secret(secret)

    code, out = _run(ctx, "clients", "disable", client_id, "--actor", "cli:alice")
    assert code == 0
    assert "disabled" in out.splitlines()[2].split()

    code, out = _run(ctx, "keys", "rotate", "--actor", "cli:alice")
    assert code == 0
    kid = out.splitlines()[2].split()[0]
    assert auth.keys.signing_key().kid == kid

    assert [(r["actor"], r["action"]) for r in audit_rows(engine)] == [
        ("cli:alice", "client.create"),
        ("cli:alice", "client.rotate_secret"),
        ("cli:alice", "client.disable"),
        ("cli:alice", "key.rotate"),
    ]
    database = dump_database(engine)
    assert secret not in database and new_secret not in database


def test_domain_errors_exit_2_and_change_nothing(
    engine: Engine, settings: Settings, clock: FixedClock, audit_rows: Any, capsys: Any
) -> None:
    code, out = _run(Ctx(engine, settings, clock), "clients", "disable", "cli_nobody")
    assert (code, out) == (2, "")
    assert capsys.readouterr().err == "error: no OAuth client 'cli_nobody'\n"
    assert audit_rows(engine) == []


def test_clients_create_with_redirect_uris_and_a_public_app(
    engine: Engine, settings: Settings, clock: FixedClock, dump_database: Any
) -> None:
    ctx = Ctx(engine, settings, clock)
    code, out = _run(
        ctx, "clients", "create", "--name", "Shop web", "--kind", "partner", "--partner", "shop",
        "--redirect-uri", "https://shop.test/cb", "--redirect-uri", "http://127.0.0.1:9/cb",
        "--actor", "cli:alice",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[3] == "redirect_uris: https://shop.test/cb http://127.0.0.1:9/cb"
    assert lines[4].startswith("client_secret: ")
    code, out = _run(ctx, "clients", "create", "--name", "App", "--kind", "app",
                     "--redirect-uri", "http://127.0.0.1:8765/callback", "--actor", "cli:alice")
    assert code == 0
    lines = out.splitlines()
    client_id = lines[2].split()[0]
    assert lines[2].split()[1:] == ["app", "-", "member"]
    assert lines[4] == "public client: no secret (authorization code with PKCE only)"
    client = AuthService(engine, settings, clock).clients.get(client_id)
    assert client is not None
    assert (client.public, client.secret_hash, client.redirect_uris) == (
        True, "", ("http://127.0.0.1:8765/callback",))
    production = Ctx(engine, Settings(production=True), clock)
    before = dump_database(engine, ["oauth_clients"])
    for uri in ("http://shop.test/cb", "https://shop.test/cb#frag", "shop.test/cb"):
        code, _ = _run(production, "clients", "create", "--name", "X", "--kind", "partner",
                       "--partner", "shop", "--redirect-uri", uri, "--actor", "cli:alice")
        assert code == 2, uri
    assert dump_database(engine, ["oauth_clients"]) == before
    code, _ = _run(production, "clients", "create", "--name", "X", "--kind", "app",
                   "--redirect-uri", "http://localhost:9/cb", "--actor", "cli:alice")
    assert code == 0
