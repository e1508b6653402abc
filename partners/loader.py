"""Load and strictly validate partner definitions from TOML (and rule versions from stored JSON).

A partner catalog is a directory of ``<id>.toml`` files; the shape is documented in
``partners/catalog/README.md``. Validation is strict because a typo in a rule costs real money:
unknown keys, wrong types, floats where an exact ratio is needed, non-positive counts and
out-of-order versions all stop start-up with a :class:`PartnerConfigError` naming the file and the
field (``rules[0].earn.per_amount_minor``; list indexes are 0-based). The same parser reads one
version's table for the publishing CLI, and :func:`rule_version_to_dict` /
:func:`rule_version_from_dict` give the exact, JSON-able form the database stores.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from gateway.core.money import Rounding
from partners.config import (
    BurnRule,
    Channel,
    EarnRule,
    PartnerDefinition,
    PartnerKind,
    PartnerPolicy,
    QuantityEarn,
    RuleVersion,
    SettlementPrices,
)

CATALOG_DIR = Path(__file__).parent / "catalog"

_PARTNER_ID = re.compile(r"[a-z][a-z0-9-]{1,62}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")
_DECIMAL_OR_FRACTION = re.compile(r"-?(\d+(\.\d+)?|\d+/\d+)")


class PartnerConfigError(Exception):
    """A partner file (or stored rule version) is invalid; ``str()`` names where and which field."""

    def __init__(self, path: str | Path, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.field:
            return f"{self.path}: {self.field}: {self.message}"
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Table:
    """One TOML table being read: knows where it is, so every error can name its field."""

    data: Mapping[str, Any]
    where: str  # file path, or the caller's label
    prefix: str  # dotted field path of this table, "" at the top

    def err(self, key: str, message: str) -> PartnerConfigError:
        return PartnerConfigError(self.where, self.name(key), message)

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def only(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.err(key, f"unknown key (expected one of: {known})")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self.err(key, "is required")
        return self.data[key]

    def str_(self, key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        value = self.raw(key)
        if not isinstance(value, str) or not value.strip():
            raise self.err(key, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.err(key, f"must be {what}, got {value!r}")
        return value

    def int_(self, key: str, *, minimum: int = 1, default: int | None = None) -> int:
        if default is not None and key not in self.data:
            return default
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.err(key, f"must be {kind}, got {value!r}")
        return value

    def opt_int(self, key: str) -> int | None:
        return self.int_(key) if key in self.data else None

    def bool_(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.err(key, f"must be true or false, got {value!r}")
        return value

    def ratio(self, key: str, *, default: Fraction | None = None, **bounds: Any) -> Fraction:
        if default is not None and key not in self.data:
            return default
        return _ratio(self.raw(key), self, key, **bounds)

    def table(self, key: str) -> _Table:
        value = self.raw(key)
        if not isinstance(value, Mapping):
            raise self.err(key, f"must be a table, got {type(value).__name__}")
        return _Table(value, self.where, self.name(key))

    def tables(self, key: str) -> list[_Table]:
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.err(key, "must be an array of tables ([[...]])")
        return [_Table(v, self.where, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]


def _ratio(
    value: Any, t: _Table, key: str, *, positive: bool = True, at_most_one: bool = False
) -> Fraction:
    """An exact ratio from ``"1.5"``, ``"3/2"`` or an int; floats are refused with a hint."""
    if isinstance(value, float):
        raise t.err(key, f'must be an exact ratio written as a string: quote it ("{value}")')
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise t.err(key, f'must be a ratio string like "1.5" or "3/2", got {value!r}')
    if isinstance(value, str) and not _DECIMAL_OR_FRACTION.fullmatch(value.strip()):
        raise t.err(key, f'must be a ratio string like "1.5" or "3/2", got {value!r}')
    try:
        ratio = Fraction(value.strip()) if isinstance(value, str) else Fraction(value)
    except ZeroDivisionError:
        raise t.err(key, f"has a zero denominator: {value!r}") from None
    if ratio < 0 or (positive and ratio == 0):
        raise t.err(key, f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
    if at_most_one and ratio > 1:
        raise t.err(key, f"must be at most 1, got {value!r}")
    return ratio


def _datetime(t: _Table, key: str) -> datetime:
    value = t.raw(key)
    if isinstance(value, datetime):  # an unquoted TOML datetime
        if value.tzinfo is None:
            raise t.err(key, "must carry a UTC offset (e.g. 2026-01-01T00:00:00Z)")
        return value.astimezone(UTC)
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise t.err(
            key,
            f"must be an RFC 3339 datetime with offset, e.g. 2026-01-01T00:00:00Z; got {value!r}",
        )
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise t.err(key, f"is not a valid datetime: {exc}") from None
    return parsed.astimezone(UTC)


def _multipliers(t: _Table, key: str, *, channels: bool) -> dict[str, Fraction]:
    if not t.has(key):
        return {}
    table = t.table(key)
    out: dict[str, Fraction] = {}
    for name, value in table.data.items():
        if channels and name not in {c.value for c in Channel}:
            known = ", ".join(c.value for c in Channel)
            raise table.err(name, f"unknown channel (expected one of: {known})")
        if not channels and not _CATEGORY.fullmatch(name):
            raise table.err(name, "category names are lower-case words like 'organic'")
        # a category multiplier of "0" excludes the category (tobacco, gift cards)
        out[name] = _ratio(value, table, name, positive=channels)
    return out


_EARN_KEYS = {
    "points", "per_amount_minor", "rounding", "min_spend_minor", "cap_per_transaction",
    "cap_per_member_daily", "expiry_days", "pending_days", "channel_multipliers",
    "category_multipliers", "quantity_earn",
}  # fmt: skip


def _earn(t: _Table) -> EarnRule:
    t.only(_EARN_KEYS)
    rounding = t.data.get("rounding", Rounding.FLOOR.value)
    if not isinstance(rounding, str) or rounding not in {r.value for r in Rounding}:
        known = ", ".join(r.value for r in Rounding)
        raise t.err("rounding", f"must be one of {known}, got {rounding!r}")
    quantity: list[QuantityEarn] = []
    for q in t.tables("quantity_earn") if t.has("quantity_earn") else []:
        q.only({"category", "points", "per_quantity_milli"})
        category = q.str_("category", _CATEGORY, "a lower-case category name")
        if any(x.category == category for x in quantity):
            raise q.err("category", f"duplicate quantity_earn category {category!r}")
        quantity.append(QuantityEarn(category, q.int_("points"), q.int_("per_quantity_milli")))
    return EarnRule(
        points=t.int_("points"),
        per_amount_minor=t.int_("per_amount_minor"),
        rounding=Rounding(rounding),
        min_spend_minor=t.int_("min_spend_minor", minimum=0, default=0),
        cap_per_transaction=t.opt_int("cap_per_transaction"),
        cap_per_member_daily=t.opt_int("cap_per_member_daily"),
        channel_multipliers=_multipliers(t, "channel_multipliers", channels=True),
        category_multipliers=_multipliers(t, "category_multipliers", channels=False),
        quantity_earn=tuple(quantity),
        expiry_days=t.int_("expiry_days", default=365),
        pending_days=t.int_("pending_days", minimum=0, default=0),
    )


def _burn(t: _Table) -> BurnRule:
    t.only({"point_value_minor", "max_basket_share", "min_points"})
    return BurnRule(
        point_value_minor=t.ratio("point_value_minor"),
        max_basket_share=t.ratio("max_basket_share", default=Fraction(1), at_most_one=True),
        min_points=t.int_("min_points", default=1),
    )


def _settlement(t: _Table) -> SettlementPrices:
    t.only({"currency", "price_per_point_issued_minor", "price_per_point_redeemed_minor",
            "fee_share"})  # fmt: skip
    return SettlementPrices(
        currency=t.str_("currency", _CURRENCY, "an ISO 4217 code like 'EUR'"),
        price_per_point_issued_minor=t.ratio("price_per_point_issued_minor", positive=False),
        price_per_point_redeemed_minor=t.ratio("price_per_point_redeemed_minor", positive=False),
        fee_share=t.ratio("fee_share", default=Fraction(0), positive=False, at_most_one=True),
    )


def _rule_version(partner_id: str, t: _Table) -> RuleVersion:
    t.only({"version", "effective_from", "earn", "burn", "settlement"})
    return RuleVersion(
        partner_id=partner_id,
        version=t.int_("version"),
        effective_from=_datetime(t, "effective_from"),
        earn=_earn(t.table("earn")) if t.has("earn") else None,
        burn=_burn(t.table("burn")) if t.has("burn") else None,
        settlement=_settlement(t.table("settlement")),
    )


def rule_version_from_mapping(
    partner_id: str, data: Mapping[str, Any], *, where: str
) -> RuleVersion:
    """One version's table (``version``, ``effective_from``, ``earn``...) as a RuleVersion.

    ``where`` labels errors (a file name, ``"--rule"``). Kind checks (a charity has no earn) need
    the partner and are made by the loader and by ``Registry.with_version``."""
    return _rule_version(partner_id, _Table(data, where, ""))


def _check_kind(kind: PartnerKind, rv: RuleVersion, t: _Table) -> None:
    if kind is PartnerKind.CHARITY and rv.earn is not None:
        raise t.err("earn", "a charity only receives donated points: remove the earn table")
    if kind is PartnerKind.MERCHANT and rv.earn is None:
        raise t.err("earn", "is required for a merchant")


def partner_from_mapping(
    data: Mapping[str, Any], *, where: str, expected_id: str | None = None
) -> PartnerDefinition:
    """A whole partner file's content as a validated PartnerDefinition."""
    t = _Table(data, where, "")
    t.only({"id", "name", "kind", "currency", "policy", "rules"})
    partner_id = t.str_("id", _PARTNER_ID, "lower-case letters, digits and '-', 2-63 long")
    if expected_id is not None and partner_id != expected_id:
        raise t.err("id", f"must equal the file name {expected_id!r}, got {partner_id!r}")
    kind_text = t.str_("kind")
    if kind_text not in {k.value for k in PartnerKind}:
        raise t.err("kind", f"must be 'merchant' or 'charity', got {kind_text!r}")
    kind = PartnerKind(kind_text)
    policy = PartnerPolicy()
    if t.has("policy"):
        p = t.table("policy")
        p.only({"negative_balance_after_return", "hold_ttl_seconds", "max_backdate_days",
                "unit_price_min_minor", "unit_price_max_minor"})
        policy = PartnerPolicy(
            negative_balance_after_return=p.bool_("negative_balance_after_return", False),
            hold_ttl_seconds=p.int_("hold_ttl_seconds", default=900),
            max_backdate_days=p.int_("max_backdate_days", minimum=0, default=7),
            unit_price_min_minor=p.opt_int("unit_price_min_minor"),
            unit_price_max_minor=p.opt_int("unit_price_max_minor"),
        )
        low, high = policy.unit_price_min_minor, policy.unit_price_max_minor
        if low is not None and high is not None and low > high:
            raise p.err("unit_price_max_minor", f"must be at least unit_price_min_minor ({low}), "
                        f"got {high}")
    versions = t.tables("rules")
    if not versions:
        raise t.err("rules", "needs at least one [[rules]] version")
    rules: list[RuleVersion] = []
    for vt in versions:
        rv = _rule_version(partner_id, vt)
        _check_kind(kind, rv, vt)
        if rules and rv.version <= rules[-1].version:
            raise vt.err("version", f"must be greater than {rules[-1].version}, got {rv.version}")
        if rules and rv.effective_from <= rules[-1].effective_from:
            raise vt.err("effective_from", "must be later than the previous version's")
        rules.append(rv)
    return PartnerDefinition(
        id=partner_id,
        name=t.str_("name"),
        kind=kind,
        currency=t.str_("currency", _CURRENCY, "an ISO 4217 code like 'UAH'"),
        policy=policy,
        rules=tuple(rules),
    )


def load_partner_file(path: Path) -> PartnerDefinition:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PartnerConfigError(path, "", f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise PartnerConfigError(path, "", f"cannot read: {exc.strerror}") from None
    return partner_from_mapping(data, where=str(path), expected_id=path.stem)


def load_catalog(directory: Path | str = CATALOG_DIR) -> dict[str, PartnerDefinition]:
    """Every ``*.toml`` in ``directory`` (sorted by name), keyed by partner id."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PartnerConfigError(directory, "", "is not a directory")
    out: dict[str, PartnerDefinition] = {}
    for path in sorted(directory.glob("*.toml")):
        definition = load_partner_file(path)
        if definition.id in out:
            raise PartnerConfigError(path, "id", f"duplicate partner id {definition.id!r}")
        out[definition.id] = definition
    return out


# -- canonical JSON form (what the database stores) ---------------------------------------------


def _frac(value: Fraction) -> str:
    return str(value)  # "3/2" or "5": exact, and accepted back by _ratio


def _frac_map(values: Mapping[str, Fraction]) -> dict[str, str]:
    return {k: _frac(v) for k, v in sorted(values.items())}


def rule_version_to_dict(rv: RuleVersion) -> dict[str, Any]:
    """The exact JSON-able form: same keys as a TOML version table, plus ``partner_id``."""
    out: dict[str, Any] = {
        "partner_id": rv.partner_id,
        "version": rv.version,
        "effective_from": rv.effective_from.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if rv.earn is not None:
        e = rv.earn
        earn: dict[str, Any] = {
            "points": e.points,
            "per_amount_minor": e.per_amount_minor,
            "rounding": e.rounding.value,
            "min_spend_minor": e.min_spend_minor,
            "expiry_days": e.expiry_days,
            "pending_days": e.pending_days,
            "channel_multipliers": _frac_map(e.channel_multipliers),
            "category_multipliers": _frac_map(e.category_multipliers),
            "quantity_earn": [
                {"category": q.category, "points": q.points,
                 "per_quantity_milli": q.per_quantity_milli}
                for q in e.quantity_earn
            ],
        }  # fmt: skip
        if e.cap_per_transaction is not None:
            earn["cap_per_transaction"] = e.cap_per_transaction
        if e.cap_per_member_daily is not None:
            earn["cap_per_member_daily"] = e.cap_per_member_daily
        out["earn"] = earn
    if rv.burn is not None:
        out["burn"] = {
            "point_value_minor": _frac(rv.burn.point_value_minor),
            "max_basket_share": _frac(rv.burn.max_basket_share),
            "min_points": rv.burn.min_points,
        }
    s = rv.settlement
    out["settlement"] = {
        "currency": s.currency,
        "price_per_point_issued_minor": _frac(s.price_per_point_issued_minor),
        "price_per_point_redeemed_minor": _frac(s.price_per_point_redeemed_minor),
        "fee_share": _frac(s.fee_share),
    }
    return out


def rule_version_from_dict(d: Mapping[str, Any]) -> RuleVersion:
    """Inverse of :func:`rule_version_to_dict`, with the same strict validation."""
    t = _Table(d, "<stored rule version>", "")
    partner_id = t.str_("partner_id", _PARTNER_ID, "a partner id")
    rest = {k: v for k, v in d.items() if k != "partner_id"}
    return rule_version_from_mapping(partner_id, rest, where=f"<stored rule version {partner_id}>")
