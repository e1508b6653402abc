"""Finance clients (issue 9, items 5 and 6): a partner-bound one is never granted
settlement:close, which it could never use, and the CLI says so."""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, func, select

from gateway.auth.cli import register
from gateway.auth.service import AuthService
from gateway.core.clock import FixedClock
from gateway.core.errors import InvalidInput
from gateway.db.tables import audit_log, oauth_clients
from gateway.settings import Settings


@dataclass
class Ctx:
    engine: Engine
    settings: Settings
    clock: FixedClock


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_partner_bound_finance_client_gets_read_only(auth: AuthService) -> None:
    bound = auth.clients.create(name="Shop finance", kind="finance", partner_id="shop",
                                actor="admin:t").client
    wide = auth.clients.create(name="Finance", kind="finance", actor="admin:t").client
    assert bound.allowed_scopes == frozenset({"settlement:read", "reports:read"})
    assert wide.allowed_scopes == frozenset({"settlement:read", "settlement:close",
                                             "reports:read"})


def test_partner_bound_finance_client_cannot_ask_for_close(auth: AuthService,
                                                           engine: Engine) -> None:
    with pytest.raises(InvalidInput) as caught:
        auth.clients.create(name="Shop finance", kind="finance", partner_id="shop",
                            scopes=["settlement:read", "settlement:close"], actor="admin:t")
    assert (caught.value.message, caught.value.field) == (
        "a finance client bound to a partner cannot close coalition periods; omit "
        "settlement:close (or omit the partner for a coalition-wide client)", "scopes")
    assert _count(engine, oauth_clients) == 0
    assert _count(engine, audit_log) == 0


def test_cli_says_a_bound_finance_client_cannot_close(engine: Engine, settings: Settings,
                                                      clock: FixedClock) -> None:
    out = io.StringIO()
    parser = argparse.ArgumentParser(prog="gateway")
    register(parser.add_subparsers(dest="command", required=True),
             lambda: Ctx(engine, settings, clock), out=out)
    args = parser.parse_args(["clients", "create", "--name", "Shop finance", "--kind",
                              "finance", "--partner", "shop", "--actor", "cli:alice"])
    assert args.func(args) == 0
    lines = out.getvalue().splitlines()
    assert lines[2].split()[1:] == ["finance", "shop", "settlement:read", "reports:read"]
    assert lines[5] == (
        "note: bound to partner 'shop', this client reads that partner's settlement statement "
        "only; it is not granted settlement:close (closing periods needs a coalition-wide "
        "finance client: omit --partner).")
