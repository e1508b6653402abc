"""The partners known to this gateway, and which rule version is in force when.

A :class:`Registry` is an immutable value: publishing a version builds a new registry
(:meth:`Registry.with_version`), so a request that looked up its rule keeps a consistent view
even while an admin publishes. It is built once at start from the TOML catalog (plus any versions
published since, which the database stores) and is cheap to share between requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from gateway.core.clock import require_utc
from gateway.core.errors import InvalidInput, NotFound, RuleNotInForce
from partners.config import PartnerDefinition, PartnerKind, RuleVersion
from partners.loader import CATALOG_DIR, load_catalog


class UnknownPartner(NotFound, KeyError):
    """No partner with this id (also a ``KeyError``, so mapping-style callers can catch it)."""

    def __init__(self, partner_id: str) -> None:
        super().__init__(f"no partner with id {partner_id!r}", field="partnerId")
        self.partner_id = partner_id

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class Registry:
    """Partner definitions by id; look-ups raise domain errors, never return ``None``."""

    __slots__ = ("_partners",)

    def __init__(self, definitions: Mapping[str, PartnerDefinition]) -> None:
        for key, definition in definitions.items():
            if key != definition.id:
                raise ValueError(f"registry key {key!r} differs from partner id {definition.id!r}")
        self._partners: dict[str, PartnerDefinition] = dict(definitions)

    @classmethod
    def from_catalog(cls, path: Path | str = CATALOG_DIR) -> Registry:
        return cls(load_catalog(path))

    def partner(self, partner_id: str) -> PartnerDefinition:
        try:
            return self._partners[partner_id]
        except KeyError:
            raise UnknownPartner(partner_id) from None

    def partners(self) -> list[PartnerDefinition]:
        return [self._partners[k] for k in sorted(self._partners)]

    def rule_at(self, partner_id: str, at: datetime) -> RuleVersion:
        """The version in force at ``at`` (UTC); versions are half-open ``[from, next from)``."""
        require_utc(at)
        rule = self.partner(partner_id).rule_at(at)
        if rule is None:
            first = self.partner(partner_id).rules[0].effective_from
            raise RuleNotInForce(
                f"partner {partner_id!r} has no rules in force at {at.isoformat()}; "
                f"its first version starts {first.isoformat()}"
            )
        return rule

    def rule(self, partner_id: str, version: int) -> RuleVersion:
        for rule in self.partner(partner_id).rules:
            if rule.version == version:
                return rule
        raise NotFound(f"partner {partner_id!r} has no rule version {version}", field="version")

    def with_version(self, rv: RuleVersion) -> Registry:
        """A new registry with ``rv`` appended; it must come after every existing version.

        Whether ``effective_from`` lies in the future is the publishing service's check (it
        has the clock); transfers record their rule version, so none is ever re-rated."""
        definition = self.partner(rv.partner_id)
        last = definition.rules[-1]
        if rv.version <= last.version:
            raise InvalidInput(
                f"version must be greater than {last.version}, got {rv.version}", field="version"
            )
        if rv.effective_from <= last.effective_from:
            raise InvalidInput(
                f"effective_from must be later than version {last.version}'s "
                f"({last.effective_from.isoformat()})",
                field="effectiveFrom",
            )
        if definition.kind is PartnerKind.CHARITY and rv.earn is not None:
            raise InvalidInput("a charity only receives donated points: no earn rule", field="earn")
        if definition.kind is PartnerKind.MERCHANT and rv.earn is None:
            raise InvalidInput("a merchant's rule version needs an earn rule", field="earn")
        updated = dataclasses.replace(definition, rules=(*definition.rules, rv))
        return Registry({**self._partners, rv.partner_id: updated})
