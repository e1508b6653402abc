"""``gateway``: serve, verify, export the schema, publish rules, run jobs, manage clients.

Run ``python -m gateway --help``. Every command reads the same ``Settings`` from the
environment (``DATABASE_URL`` etc.); with none set it uses the embedded SQLite default."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.core.errors import DomainError
from gateway.settings import ServingRefused, Settings, serving_settings

DEMO_PARTNERS = ("grocery", "electronics", "fuel", "charity")
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"  # a loopback client (RFC 8252 §7.3)
DEMO_APP_CLIENT = "coalition-app-demo"
DEMO_MEMBER_EMAIL = "demo@example.com"
DEMO_MEMBER_PASSWORD = "demo-member-password"


@dataclass
class CliContext:
    engine: Engine
    settings: Settings
    clock: Clock


def _context() -> CliContext:
    from gateway.app import build

    gateway = build()
    return CliContext(gateway.services.engine, gateway.services.settings, gateway.services.clock)


def _services() -> Any:
    from gateway.app import build

    return build().services


def cmd_serve(args: argparse.Namespace) -> int:
    """Prepare once (migrate, sync the catalog, demo clients), then serve with N workers.

    Each worker is a process of its own (uvicorn's supervisor restarts one that dies) that builds
    the app with ``gateway.app:create_app``; with N workers per host, each has its own database
    pool (see docs/deployment.md for sizing). SIGTERM stops accepting connections, lets
    in-flight requests finish (up to ``--graceful-timeout`` seconds) and exits 0."""
    # Before anything imports prometheus_client: it picks its multiprocess value store at
    # import time from this variable, in this process and in every worker (they inherit it).
    # A fresh directory per start, so counters restart with the server, not from a past run.
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _serve(args)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import prepare
    from gateway.auth.clients import ensure_demo_client
    from gateway.auth.scopes import DEFAULT_ALLOWANCE
    from gateway.http_protocol import LOOP, NoDelayHTTPProtocol
    from gateway.http_protocol import describe as http_stack
    from gateway.observability.logs import configure_logging

    try:
        settings = serving_settings(Settings.from_env(), args.host, args.port)
    except ServingRefused as refused:
        print(f"error: refusing to start: {refused}", file=sys.stderr)
        return 2
    # The workers build their own Settings from the environment: hand them this issuer.
    os.environ["GATEWAY_ISSUER"] = settings.issuer
    workers = args.workers if args.workers is not None else settings.workers
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    configure_logging(json_lines=settings.log_json)
    engine = prepare(settings)
    url = f"http://{args.host}:{args.port}"
    if args.demo:
        print("Demo partners (demo secrets: never use these in production):")
        for partner_id in DEMO_PARTNERS:
            client_id, secret = f"{partner_id}-demo", f"{partner_id}-demo-secret"
            ensure_demo_client(engine, partner_id, client_id, secret,
                               DEFAULT_ALLOWANCE["partner"], redirect_uris=[DEMO_REDIRECT_URI])
            print(f"  {partner_id:<12} client_id={client_id:<18} client_secret={secret}")
        print(f"  (redirect URI of each: {DEMO_REDIRECT_URI})")
        ensure_demo_client(engine, None, DEMO_APP_CLIENT, "", DEFAULT_ALLOWANCE["app"],
                           redirect_uris=[DEMO_REDIRECT_URI], kind="app")
        print(f"Demo app:      client_id={DEMO_APP_CLIENT} (public, PKCE), "
              f"redirect URI {DEMO_REDIRECT_URI}")
        from gateway.core.clock import SystemClock
        from gateway.ledger.enrolment import ensure_demo_member

        card = ensure_demo_member(engine, SystemClock(), DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD)
        print(f"Demo member:   email={DEMO_MEMBER_EMAIL} password={DEMO_MEMBER_PASSWORD} "
              f"card={card}")
        from gateway.promotions import tier_sync
        from gateway.promotions.tier_config import load_programme, tiers_path

        programme = load_programme(tiers_path(settings.catalog_dir))
        if programme is not None:  # tier benefits in force, as `gateway tiers sync` would
            written = tier_sync.sync(engine, programme, actor="demo", now=SystemClock().now())
            print(f"Demo tiers:    programme v{programme.version} "
                  f"({', '.join(t.name for t in programme.tiers)}), {len(written)} campaigns")
    engine.dispose()  # the workers open their own pools
    print(f"\nIssuer:        {settings.issuer}")
    print(f"GraphQL API:   {url}/graphql   (GraphiQL in a browser)")
    print(f"Member portal: {url}/portal/")
    print(f"Mail:          {_mail_destination(settings)}")
    print(f"Token:         curl -s -u grocery-demo:grocery-demo-secret "
          f"-d grant_type=client_credentials {url}/oauth/token")
    print("Next:          README.md, 'Partner quick start': enrol, earn, redeem.")
    print(f"HTTP stack:    {http_stack()}", flush=True)
    events = None
    if args.event_worker:  # the same settings (environment), its own process and pool
        events = subprocess.Popen([sys.executable, "-m", "gateway", "worker", "--poll", "1"])
        print(f"Event worker:  pid {events.pid} (gateway worker: webhooks, notifications, "
              "challenges, draws; docs/webhooks.md)", flush=True)
    print(flush=True)
    # With one worker uvicorn serves in this process and, after its graceful shutdown,
    # re-raises the SIGTERM it caught; this handler turns that into a clean exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        # httptools on uvloop, TCP_NODELAY on every connection (gateway/http_protocol.py).
        uvicorn.run("gateway.app:create_app", factory=True, host=args.host, port=args.port,
                    workers=workers, log_config=None, log_level="info", access_log=False,
                    server_header=False, timeout_graceful_shutdown=args.graceful_timeout,
                    http=NoDelayHTTPProtocol, loop=LOOP)
    except KeyboardInterrupt:
        return 130
    finally:
        if events is not None:  # SIGTERM: it finishes the pass in hand, then exits
            events.terminate()
            try:
                events.wait(timeout=10)
            except subprocess.TimeoutExpired:
                events.kill()
    return 0


def _mail_destination(settings: Settings) -> str:
    """Where ``gateway notify send`` puts notification emails (docs/notifications.md)."""
    mail = settings.mail
    if mail.mail_dir is not None:
        return f"notification emails are written to {mail.mail_dir}/*.eml (gateway notify send)"
    if mail.smtp_host:
        return f"notification emails go through smtp://{mail.smtp_host}:{mail.smtp_port}"
    return "no relay: set GATEWAY_SMTP_HOST (or GATEWAY_MAIL_DIR) to send notification emails"


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    from gateway.db import migrate

    engine = _engine()
    try:
        migrate.upgrade(engine)
        print(f"database at revision {migrate.current(engine)} (head {migrate.head()})")
    finally:
        engine.dispose()
    return 0


def cmd_db_current(_: argparse.Namespace) -> int:
    from gateway.db import migrate

    engine = _engine()
    try:
        revision = migrate.current(engine)
    finally:
        engine.dispose()
    head = migrate.head()
    print(f"{revision or 'none (never migrated)'} (head {head})")
    return 0 if revision == head else 1


def _engine() -> Engine:
    from gateway.app import ensure_sqlite_dir
    from gateway.db.engine import make_engine

    url = Settings.from_env().database_url
    ensure_sqlite_dir(url)
    return make_engine(url)


def cmd_verify(_: argparse.Namespace) -> int:
    from gateway.ledger.verify import verify_ledger
    from gateway.settlement.service import check_rollups

    report = verify_ledger(_context().engine, extra=[check_rollups])
    for problem in report.problems:
        print(f"FAIL {problem}")
    print(f"{report.checks} checks, {len(report.problems)} problems")
    return 0 if report.ok else 1


def cmd_schema(args: argparse.Namespace) -> int:
    from gateway.api.schema import print_sdl, print_subgraph_sdl

    sys.stdout.write(print_subgraph_sdl() if args.federation else print_sdl())
    return 0


def cmd_errors_doc(_: argparse.Namespace) -> int:
    from gateway.api.errors_doc import render

    sys.stdout.write(render())
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from gateway.app import build
    from gateway.rules.store import publish_rule_version
    from partners.loader import PartnerConfigError, rule_version_from_mapping

    gateway = build()
    path = Path(args.file)
    try:
        data = tomllib.loads(path.read_text())
        rv = rule_version_from_mapping(args.partner, data, where=str(path))
    except (OSError, tomllib.TOMLDecodeError, PartnerConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    publish_rule_version(gateway.services.engine, gateway.services.rules,
                         gateway.services.clock, rv, actor=args.actor)
    print(f"published {args.partner} v{rv.version}, in force from {rv.effective_from.isoformat()}")
    return 0


def cmd_documents_register(args: argparse.Namespace) -> int:
    """Register trusted documents: one ``.graphql`` file, or a persisted-query manifest."""
    from gateway.api.documents import InvalidDocument, read_manifest
    from gateway.api.registering import register_documents
    from gateway.app import build
    from gateway.core.ids import PartnerId
    from gateway.db.documents import EVERY_PARTNER

    gateway = build()
    partner = EVERY_PARTNER if args.every_partner else PartnerId(args.partner)
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        done = register_documents(gateway.services, read_manifest(text), partner,
                                  actor=args.actor)
    except (OSError, InvalidDocument) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for doc in done:
        state = "registered" if doc.created else "already registered"
        print(f"sha256:{doc.id} {doc.name or '(anonymous)'} {state}")
    return 0


def cmd_documents_list(args: argparse.Namespace) -> int:
    from gateway.core.ids import PartnerId
    from gateway.db.documents import listed

    for doc in listed(_engine(), None if args.partner is None else PartnerId(args.partner)):
        print(f"sha256:{doc.id} {doc.partner_id or '*'} {doc.name or '(anonymous)'}")
    return 0


def cmd_expire(_: argparse.Namespace) -> int:
    from gateway.app import build
    from gateway.jobs import run_expiry

    gateway = build()
    from gateway.settlement.cli import progress_bar

    written = run_expiry(gateway.services.ledger, progress=progress_bar(sys.stderr))
    print(f"{written} expiry operations written")
    return 0


def parser() -> argparse.ArgumentParser:
    from gateway.auth.cli import register
    from gateway.challenges.cli import register as register_challenges
    from gateway.draws.cli import register as register_draws
    from gateway.members.cli import register as register_members
    from gateway.notifications.cli import register as register_notify
    from gateway.promotions.cli import register as register_campaigns
    from gateway.promotions.coupons_cli import register as register_coupons
    from gateway.promotions.tiers_cli import register as register_tiers
    from gateway.reports.cli import register as register_reports
    from gateway.settlement.cli import register as register_settlement
    from gateway.settlement.funding_cli import register as register_funding
    from gateway.worker.cli import register as register_worker

    root = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create demo partner clients")
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes (default GATEWAY_WORKERS, else 1)")
    serve.add_argument("--event-worker", action="store_true",
                       help="also run one `gateway worker` process beside the server (webhooks, "
                            "notifications, challenges, draws), stopped with it")
    serve.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="on SIGTERM, how long in-flight requests may take to finish")
    serve.set_defaults(func=cmd_serve)
    db = sub.add_parser("db", help="database schema (Alembic migrations)").add_subparsers(
        dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the newest revision").set_defaults(
        func=cmd_db_upgrade)
    db.add_parser("current", help="print the database's revision (exit 1 if behind)"
                  ).set_defaults(func=cmd_db_current)
    sub.add_parser("verify", help="check balances against the ledger").set_defaults(
        func=cmd_verify)
    schema = sub.add_parser("schema", help="print the GraphQL SDL")
    schema.add_argument("--federation", action="store_true",
                        help="print the Apollo Federation subgraph SDL (what _service.sdl "
                        "answers) instead of the served schema")
    schema.set_defaults(func=cmd_schema)
    sub.add_parser("errors-doc", help="print docs/errors.md: error codes per operation"
                   ).set_defaults(func=cmd_errors_doc)
    rules = sub.add_parser("rules", help="partner rule versions").add_subparsers(
        dest="rules_command", required=True)
    publish = rules.add_parser("publish", help="publish a new rule version from a TOML file")
    publish.add_argument("--partner", required=True)
    publish.add_argument("--file", required=True, help="TOML holding one [[rules]] table's body")
    publish.add_argument("--actor", required=True, help="who publishes (recorded in the audit)")
    publish.set_defaults(func=cmd_publish)
    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(
        dest="job", required=True)
    jobs.add_parser("expire", help="expire points and lapsed holds").set_defaults(
        func=cmd_expire)
    documents = sub.add_parser(
        "documents", help="trusted GraphQL documents (docs/trusted-documents.md)"
    ).add_subparsers(dest="documents_command", required=True)
    register_doc = documents.add_parser(
        "register", help="register a .graphql file or a persisted-query manifest (Apollo or "
        "Relay JSON): partners then send the SHA-256 id instead of the text")
    register_doc.add_argument("file")
    owner = register_doc.add_mutually_exclusive_group(required=True)
    owner.add_argument("--partner", help="the partner whose tokens may send them")
    owner.add_argument("--every-partner", action="store_true",
                       help="any token may send them (the coalition's own apps)")
    register_doc.add_argument("--actor", default="cli", help="who registers (recorded)")
    register_doc.set_defaults(func=cmd_documents_register)
    list_doc = documents.add_parser("list", help="list registered documents")
    list_doc.add_argument("--partner", default=None)
    list_doc.set_defaults(func=cmd_documents_list)
    register(sub, _context)
    register_settlement(sub, _services)
    register_funding(sub, _services)
    register_reports(sub, _services)
    register_members(sub, _context)
    register_campaigns(sub, _services, rules=rules)
    register_tiers(sub, _services)
    register_coupons(sub, _services)
    register_notify(sub, _services)
    register_worker(sub, _context)
    register_draws(sub, _services)
    register_challenges(sub, _services)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: Any = args.func(args)
    except DomainError as exc:
        print(f"error: {exc.message}" + (f" (field {exc.field})" if exc.field else ""),
              file=sys.stderr)
        return 2
    return int(result or 0)
