"""Challenge definitions read strictly, from the coalition's catalog file, the partner API and
the CLI alike: an unknown key, a wrong type or a value out of range is an ``InvalidInput``
naming the field (``field_name`` renders it: snake_case for files, camelCase for GraphQL).
Also the canonical JSON a definition is stored as."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway.challenges.model import COALITION, Challenge, Count, WindowKind
from gateway.core.errors import InvalidInput

_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")
_BADGE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_CURRENCY = re.compile(r"[A-Z]{3}")
KEYS = frozenset({"id", "name", "badge", "bonus_points", "window", "days", "count", "target",
                  "partners", "min_spend_minor", "currency", "starts_at", "ends_at"})
MAX_TARGET = 1000
MAX_BONUS_POINTS = 1_000_000
MAX_DAYS = 366


def snake(field: str) -> str:
    return field


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def qualified_id(owner: str, local: str) -> str:
    return local if owner == COALITION else f"{owner}:{local}"


def parse_challenge(raw: Mapping[str, Any], *, owner: str, known_partners: Collection[str],
                    where: str = "", field_name: Callable[[str], str] = snake) -> Challenge:
    """A challenge of ``owner`` from ``raw``. A partner's challenge counts purchases at that
    partner only (``partners`` absent or just the owner) and cannot count brands."""
    def fail(field: str, message: str) -> InvalidInput:
        name = field_name(field)
        return InvalidInput(f"{where}{': ' if where else ''}{name}: {message}", field=name)

    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise fail(unknown[0], "unknown key (known: " + ", ".join(sorted(KEYS)) + ")")
    local = _text(raw, "id", fail, _ID, "1 to 40 of a-z 0-9 -, starting with a letter")
    name = raw.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise fail("name", "a name of 1 to 100 characters is required")
    badge = _text(raw, "badge", fail, _BADGE, "1 to 32 of a-z 0-9 -, starting with a letter")
    bonus = _int(raw, "bonus_points", fail, 0, MAX_BONUS_POINTS)
    window = _enum(raw, "window", WindowKind, fail)
    count = _enum(raw, "count", Count, fail)
    target = _int(raw, "target", fail, 1, MAX_TARGET)
    days = raw.get("days")
    if window is WindowKind.ROLLING:
        days = _int(raw, "days", fail, 1, MAX_DAYS)
    elif days is not None:
        raise fail("days", "only a rolling window has days")
    if (window is WindowKind.STREAK) != (count is Count.WEEKS):
        raise fail("count", "a streak counts weeks, and only a streak does")
    partners = raw.get("partners") or []
    if not isinstance(partners, list) or not all(isinstance(p, str) for p in partners):
        raise fail("partners", "a list of partner ids")
    for partner in partners:
        if partner not in known_partners:
            raise fail("partners", f"no partner {partner!r}")
    if owner != COALITION:
        if count is Count.BRANDS:
            raise fail("count", "only the coalition can count brands (a partner's challenge "
                       "counts its own purchases)")
        if partners and partners != [owner]:
            raise fail("partners", "a partner's challenge counts purchases at that partner only")
        partners = [owner]
    min_spend = raw.get("min_spend_minor")
    currency = raw.get("currency")
    if min_spend is not None:
        min_spend = _int(raw, "min_spend_minor", fail, 1, 10**15)
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise fail("currency", "a minimum spend needs its ISO 4217 currency (e.g. UAH)")
    elif currency is not None:
        raise fail("currency", "a currency is only given with min_spend_minor")
    starts_at = _time(raw, "starts_at", fail, required=True)
    ends_at = _time(raw, "ends_at", fail, required=False)
    assert starts_at is not None
    if ends_at is not None and ends_at <= starts_at:
        raise fail("ends_at", "must be after starts_at")
    stored_id = qualified_id(owner, local)
    if len(stored_id) > 54:  # "challenge:" + id names its promotion_awards rows (64 characters)
        raise fail("id", "too long with the owner prefix (54 characters at most)")
    return Challenge(id=stored_id, owner=owner, name=name.strip(), window=window, count=count,
                     target=target, bonus_points=bonus, badge=badge, starts_at=starts_at,
                     ends_at=ends_at, days=days, partners=frozenset(partners),
                     min_spend_minor=min_spend, currency=currency)


def local_id(challenge: Challenge) -> str:
    return challenge.id.removeprefix(f"{challenge.owner}:") if challenge.owner != COALITION \
        else challenge.id


def to_mapping(c: Challenge) -> dict[str, Any]:
    """The definition as input keys (what ``parse_challenge`` reads back)."""
    found: dict[str, Any] = {
        "id": local_id(c), "name": c.name, "badge": c.badge, "bonus_points": c.bonus_points,
        "window": str(c.window), "count": str(c.count), "target": c.target,
        "partners": sorted(c.partners), "starts_at": c.starts_at,
    }
    for key, value in (("days", c.days), ("min_spend_minor", c.min_spend_minor),
                       ("currency", c.currency), ("ends_at", c.ends_at)):
        if value is not None:
            found[key] = value
    return found


def dumps(c: Challenge) -> str:
    """Canonical JSON (times as RFC 3339 UTC), with owner and version."""
    body = {k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v)
            for k, v in to_mapping(c).items()}
    body["owner"], body["version"] = c.owner, c.version
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Challenge:
    body = json.loads(text)
    owner, version = body.pop("owner"), body.pop("version")
    partners = body.get("partners", [])
    found = parse_challenge(body, owner=owner, known_partners=partners, where="stored")
    return replace(found, version=int(version))


# --- field readers ----------------------------------------------------------------------------
Fail = Callable[[str, str], InvalidInput]
E = TypeVar("E", WindowKind, Count)


def _text(raw: Mapping[str, Any], key: str, fail: Fail, pattern: re.Pattern[str],
          what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise fail(key, what)
    return value


def _int(raw: Mapping[str, Any], key: str, fail: Fail, low: int, high: int) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(key, f"a whole number from {low} to {high}")
    return value


def _enum(raw: Mapping[str, Any], key: str, kind: type[E], fail: Fail) -> E:
    value = raw.get(key)
    try:
        return kind(str(value))
    except ValueError:
        raise fail(key, "one of " + ", ".join(str(v) for v in kind)) from None


def _time(raw: Mapping[str, Any], key: str, fail: Fail, *, required: bool) -> datetime | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise fail(key, "a time with its offset (RFC 3339) is required")
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise fail(key, "a time with its offset (RFC 3339)") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise fail(key, "a time with its offset (RFC 3339)")
    return value.astimezone(UTC)
