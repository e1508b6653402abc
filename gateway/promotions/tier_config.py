"""The tier programme's file (``partners/catalog/coalition/tiers.toml``), read strictly: an
unknown key, a float or a threshold out of order is an ``InvalidInput`` naming the file and the
field, like a partner file (partners/catalog/README.md). Loaded at start beside the partner
catalog; ``gateway tiers sync`` publishes its effects as campaigns (``tier_sync``)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from gateway.core.errors import InvalidInput
from gateway.promotions.tiers import (
    COALITION_FUNDED,
    PARTNER_FUNDED,
    PartnerTerms,
    Tier,
    TierProgramme,
)

TIERS_FILE = Path("coalition") / "tiers.toml"  # under the partner catalog directory
_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")
_RATIO = re.compile(r"\d+(\.\d+)?|\d+/\d+")
_TOP = frozenset({"version", "effective_from", "window_months", "tiers", "partners"})
_TIER = frozenset({"id", "name", "threshold"})
_TERMS = frozenset({"funder", "multipliers", "discount_percent"})


def tiers_path(catalog_dir: Path) -> Path:
    return catalog_dir / TIERS_FILE


def load_programme(path: Path) -> TierProgramme | None:
    """The programme in ``path``; None when there is no such file (no tiers)."""
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{path}: invalid TOML: {error}", field="file") from None
    return programme_from_mapping(data, where=str(path))


def programme_from_mapping(data: Mapping[str, Any], *, where: str) -> TierProgramme:
    def fail(field: str, message: str) -> InvalidInput:
        return InvalidInput(f"{where}: {field}: {message}", field=field)

    _only(data, _TOP, "", fail)
    version = _int(data, "version", "version", fail, minimum=1)
    effective_from = data.get("effective_from")
    if isinstance(effective_from, str):
        try:
            effective_from = datetime.fromisoformat(effective_from)
        except ValueError:
            raise fail("effective_from", "must be an RFC 3339 time with an offset") from None
    if not isinstance(effective_from, datetime) or effective_from.tzinfo is None:
        raise fail("effective_from", "must be an RFC 3339 time with an offset")
    window_months = _int(data, "window_months", "window_months", fail, minimum=1, default=12)
    if window_months > 36:
        raise fail("window_months", "must be at most 36")
    raw_tiers = data.get("tiers")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise fail("tiers", "must be a non-empty array of tables ([[tiers]])")
    tiers: list[Tier] = []
    for i, raw in enumerate(raw_tiers):
        at = f"tiers[{i}]"
        if not isinstance(raw, Mapping):
            raise fail(at, "must be a table")
        _only(raw, _TIER, at, fail)
        tier_id = _text(raw, "id", f"{at}.id", fail, pattern=_ID)
        threshold = _int(raw, "threshold", f"{at}.threshold", fail, minimum=0)
        if i == 0 and threshold != 0:
            raise fail(f"{at}.threshold", "the first tier's threshold must be 0 (every member "
                       "holds it)")
        if tiers and threshold <= tiers[-1].threshold:
            raise fail(f"{at}.threshold", f"must be above {tiers[-1].threshold} (tiers ascend)")
        if any(t.id == tier_id for t in tiers):
            raise fail(f"{at}.id", f"duplicate tier {tier_id!r}")
        tiers.append(Tier(tier_id, _text(raw, "name", f"{at}.name", fail), threshold))
    ids = {t.id for t in tiers}
    raw_partners = data.get("partners", {})
    if not isinstance(raw_partners, Mapping):
        raise fail("partners", "must be a table of partner ids")
    partners: dict[str, PartnerTerms] = {}
    for partner_id, raw in sorted(raw_partners.items()):
        at = f"partners.{partner_id}"
        if not isinstance(raw, Mapping):
            raise fail(at, "must be a table")
        _only(raw, _TERMS, at, fail)
        funder = raw.get("funder", COALITION_FUNDED)
        if funder not in (COALITION_FUNDED, PARTNER_FUNDED):
            raise fail(f"{at}.funder", f"must be {COALITION_FUNDED!r} or {PARTNER_FUNDED!r}")
        multipliers = _ratios(raw, "multipliers", at, ids, fail, above_one=True)
        discounts = _ratios(raw, "discount_percent", at, ids, fail, above_one=False)
        partners[partner_id] = PartnerTerms(partner_id, funder, multipliers, discounts)
    return TierProgramme(version, effective_from.astimezone(UTC), tuple(tiers), partners,
                         window_months)


def _only(raw: Mapping[str, Any], allowed: frozenset[str], at: str, fail: Any) -> None:
    for key in raw:
        if key not in allowed:
            raise fail(f"{at}.{key}" if at else key,
                       f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _int(raw: Mapping[str, Any], key: str, field: str, fail: Any, *, minimum: int,
         default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(field, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _text(raw: Mapping[str, Any], key: str, field: str, fail: Any,
          pattern: re.Pattern[str] | None = None) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise fail(field, "must be a non-empty string of at most 64 characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise fail(field, f"must match {pattern.pattern}, got {value!r}")
    return value


def _ratios(raw: Mapping[str, Any], key: str, at: str, ids: set[str], fail: Any, *,
            above_one: bool) -> dict[str, Fraction]:
    """``{ gold = "1.25" }``: exact ratio strings per tier id (floats refused: not exact)."""
    table = raw.get(key, {})
    if not isinstance(table, Mapping):
        raise fail(f"{at}.{key}", "must be a table of tier id = \"ratio\"")
    out: dict[str, Fraction] = {}
    for tier_id, value in sorted(table.items()):
        field = f"{at}.{key}.{tier_id}"
        if tier_id not in ids:
            raise fail(field, f"no tier {tier_id!r} in [[tiers]]")
        if not isinstance(value, str) or not _RATIO.fullmatch(value):
            raise fail(field, f"must be an exact ratio string such as \"1.5\" or \"3/2\", "
                       f"got {value!r}")
        ratio = Fraction(value)
        if above_one and ratio <= 1:
            raise fail(field, "a multiplier must be above 1")
        if not above_one and not 0 < ratio <= 100:
            raise fail(field, "a percentage must be above 0 and at most 100")
        out[tier_id] = ratio
    return out
