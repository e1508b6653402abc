"""Rule versions in the database, and the in-memory rule book every request reads.

The TOML catalog (``partners/catalog``) seeds partners and their first versions at start-up;
versions published later (CLI or admin API) are appended to ``rule_versions`` with who published
them and when, and never change. The :class:`RuleBook` caches the registry in memory and reloads
it when the number of stored versions changes (checked at most every ``refresh_s`` seconds), so a
version published from one process reaches every worker without a restart."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import datetime

from sqlalchemy import Engine, func, insert, select

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.tables import audit_log, partners, rule_versions
from gateway.db.uow import UnitOfWork
from gateway.ledger.chart import AccountKind
from gateway.ledger.repository import LedgerRepository
from gateway.ledger.runner import leave_loop_for_io
from partners.config import PartnerDefinition, RuleVersion
from partners.loader import rule_version_from_dict, rule_version_to_dict
from partners.registry import Registry


class CatalogConflict(Exception):
    """The TOML catalog contradicts what was already published (a start-up error)."""


def _body(rv: RuleVersion) -> str:
    return json.dumps(rule_version_to_dict(rv), sort_keys=True, separators=(",", ":"))


def sync_catalog(engine: Engine, catalog: Registry, clock: Clock) -> None:
    """Insert partners and catalog versions not yet stored; refuse a catalog that rewrites a
    published version (publish a new version instead)."""
    with UnitOfWork(engine) as uow:
        conn, now = uow.conn, clock.now()
        ledger = LedgerRepository(conn)
        for definition in catalog.partners():
            row = conn.execute(select(partners).where(partners.c.id == definition.id)).first()
            if row is None:
                conn.execute(insert(partners), {
                    "id": definition.id, "name": definition.name, "kind": str(definition.kind),
                    "currency": definition.currency, "created_at": now,
                })
            elif (row.kind, row.currency) != (str(definition.kind), definition.currency):
                raise CatalogConflict(
                    f"partner {definition.id!r}: kind/currency cannot change after launch "
                    f"(stored {row.kind}/{row.currency})"
                )
            stored: dict[int, str] = dict(conn.execute(
                select(rule_versions.c.version, rule_versions.c.body)
                .where(rule_versions.c.partner_id == definition.id)
            ).all())
            for rv in definition.rules:
                body = _body(rv)
                if rv.version not in stored:
                    conn.execute(insert(rule_versions), {
                        "partner_id": rv.partner_id, "version": rv.version,
                        "effective_from": rv.effective_from, "body": body,
                        "published_by": "catalog", "published_at": now,
                    })
                elif stored[rv.version] != body:
                    raise CatalogConflict(
                        f"partners/catalog/{definition.id}.toml: rules version {rv.version} "
                        "differs from the version already published; versions never change, "
                        "publish a new one"
                    )
            for kind in (AccountKind.ISSUED, AccountKind.REDEEMED, AccountKind.PROMOTIONS):
                ledger.partner_account(definition.id, kind)
        for kind in (AccountKind.BONUS, AccountKind.BREAKAGE):
            ledger.coalition_account(kind)
        uow.commit()


def load_registry(engine: Engine, catalog: Registry) -> Registry:
    """The catalog's partners with every stored version (catalog and published)."""
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(
            select(rule_versions.c.partner_id, rule_versions.c.body)
            .order_by(rule_versions.c.partner_id, rule_versions.c.version)
        ).all()
    versions: dict[str, list[RuleVersion]] = {}
    for partner_id, body in rows:
        versions.setdefault(partner_id, []).append(rule_version_from_dict(json.loads(body)))
    definitions: dict[str, PartnerDefinition] = {}
    for definition in catalog.partners():
        rules = tuple(versions.get(definition.id, definition.rules))
        definitions[definition.id] = dataclasses.replace(definition, rules=rules)
    return Registry(definitions)


def publish_rule_version(
    engine: Engine, book: RuleBook, clock: Clock, rv: RuleVersion, *, actor: str
) -> None:
    """Append a new version. It must start in the future: the past stays as it was rated."""
    now = clock.now()
    if rv.effective_from < now:
        raise InvalidInput(
            f"effective_from {rv.effective_from.isoformat()} is in the past; a new version "
            "may only start now or later", field="effectiveFrom",
        )
    book.reload()
    book.registry.with_version(rv)  # validates order and kind
    with UnitOfWork(engine) as uow:
        uow.conn.execute(insert(rule_versions), {
            "partner_id": rv.partner_id, "version": rv.version,
            "effective_from": rv.effective_from, "body": _body(rv),
            "published_by": actor, "published_at": now,
        })
        uow.conn.execute(insert(audit_log), {
            "at": now, "actor": actor, "action": "rule_version.published",
            "subject": f"{rv.partner_id}/v{rv.version}",
            "detail": json.dumps({"effective_from": rv.effective_from.isoformat()}),
        })
        uow.commit()
    book.reload()


class RuleBook:
    """The rules in force, cached; implements ``gateway.ledger.context.RuleSource``."""

    def __init__(self, engine: Engine, catalog: Registry, *, refresh_s: float = 2.0) -> None:
        self._engine = engine
        self._catalog = catalog
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp = -1
        self.registry = catalog
        self.reload()

    def reload(self) -> None:
        with self._lock:
            self._stamp = self._count()
            self.registry = load_registry(self._engine, self._catalog)
            self._checked = time.monotonic()

    def _count(self) -> int:
        with UnitOfWork(self._engine, write=False) as uow:
            return int(uow.conn.execute(select(func.count()).select_from(rule_versions))
                       .scalar_one())

    def _fresh(self) -> Registry:
        if time.monotonic() - self._checked > self._refresh_s:
            # The check reads the database (and may reload the registry under a lock): a
            # command running on the event loop goes to a thread for it (decision 012).
            leave_loop_for_io()
            self._checked = time.monotonic()
            if self._count() != self._stamp:
                self.reload()
        return self.registry

    def partner(self, partner_id: str) -> PartnerDefinition:
        return self._fresh().partner(partner_id)

    def rule_at(self, partner_id: str, at: datetime) -> RuleVersion:
        return self._fresh().rule_at(partner_id, at)

    def rule(self, partner_id: str, version: int) -> RuleVersion:
        return self._fresh().rule(partner_id, version)
