"""A campaign's input, a plain dict (the GraphQL input as a dict, or a TOML/JSON file), parsed
field by field into a ``model.Campaign``: one parser for the partner API and the CLI.

Keys are camelCase as in GraphQL. Every refusal is ``InvalidInput`` naming the dotted path of
the field at fault (``effects[1].multiplier.factor``). Ratios are strings (``"1.5"``, ``"3/2"``),
never floats; money is integer minor units in the owner's currency; times are ISO 8601 with an
offset (stored in UTC). The shape, field by field, is in docs/campaigns.md."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time
from fractions import Fraction
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.errors import InvalidInput
from gateway.promotions import model as m

T = TypeVar("T")

CHANNELS = frozenset({"online", "app", "store"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,47}")
_MAX_TEXT = 2000
_MAX_LIST = 100
_TOP = frozenset({"id", "name", "description", "trigger", "validFrom", "validUntil", "channels",
                  "partners", "audience", "conditions", "effects", "limits", "stacking",
                  "holdoutPercent"})
_AUDIENCE = frozenset({"tiers", "segment", "birthdayMonth"})
_CONDITIONS = frozenset({"minSpendMinor", "basketHas", "schedule", "channels", "nthPurchase",
                         "couponPresented", "referralInEffect"})
EFFECT_KINDS = ("bonusPoints", "multiplier", "cashback", "tillReward", "pointsDiscount",
                "referralReward")


def parse_campaign(raw: Mapping[str, Any], *, owner: str) -> m.Campaign:
    """``raw`` as a campaign of ``owner`` (a partner id, or ``model.COALITION``), version 1
    (``repository.publish_version`` numbers it). A partner's campaign is funded by it and
    applies only at it; a coalition campaign names its ``partners``."""
    p = _Path("")
    _only(raw, _TOP, p)
    campaign_id = _text(raw, "id", p, pattern=_ID)
    valid_from = _datetime(raw, "validFrom", p)
    valid_until = _optional(raw, "validUntil", p, _datetime)
    partners = _partners(raw, owner, p)
    audience = _audience(_mapping(raw, "audience", p, required=False), p.key("audience"))
    # A partner's segments live in its namespace like its campaigns (``grocery:frequent``):
    # a partner's personal offer can name only its own segment (decision 026).
    audience = tuple(m.InSegment(qualified_id(owner, a.segment)) if isinstance(a, m.InSegment)
                     else a for a in audience)
    conditions = _conditions(_mapping(raw, "conditions", p, required=False),
                             p.key("conditions"))
    return m.Campaign(
        id=qualified_id(owner, campaign_id), version=1, owner=owner, funder=owner,
        name=_text(raw, "name", p, max_len=200),
        trigger=_enum(raw, "trigger", p, m.Trigger, default=m.Trigger.PURCHASE),
        valid_from=valid_from, valid_until=valid_until, partners=partners,
        channels=_channels(raw, "channels", p), audience=audience, conditions=conditions,
        effects=_effects(raw, p), limits=_limits(_mapping(raw, "limits", p, required=False),
                                                 p.key("limits")),
        stacking=_stacking(_mapping(raw, "stacking", p, required=False), p.key("stacking")),
        description=_optional(raw, "description", p,
                              lambda r, k, q: _text(r, k, q, max_len=_MAX_TEXT)) or "",
        holdout_percent=_optional(raw, "holdoutPercent", p,
                                  lambda r, k, q: _int(r, k, q, minimum=0,
                                                       maximum=m.MAX_HOLDOUT_PERCENT)) or 0,
    )


def qualified_id(owner: str, campaign_id: str) -> str:
    """A partner's campaign ids live in its own namespace (``grocery:summer``), so one partner
    never learns that another's id exists; the coalition's have no prefix."""
    if owner == m.COALITION or campaign_id.startswith(f"{owner}:"):
        return campaign_id
    return f"{owner}:{campaign_id}"


# --- the parts --------------------------------------------------------------------------------
def _partners(raw: Mapping[str, Any], owner: str, p: _Path) -> frozenset[str]:
    if owner != m.COALITION:
        given = _optional(raw, "partners", p, _strings)
        if given is not None and given != frozenset({owner}):
            raise InvalidInput(f"a partner's campaign applies only at that partner: partners "
                               f"must be [{owner!r}] or omitted", field=p.key("partners").text)
        return frozenset({owner})
    partners = _strings(raw, "partners", p)
    if not partners:
        raise InvalidInput("a coalition campaign names at least one partner",
                           field=p.key("partners").text)
    return partners


def _audience(raw: Mapping[str, Any] | None, p: _Path) -> tuple[m.Condition, ...]:
    if raw is None:
        return ()
    _only(raw, _AUDIENCE, p)
    found: list[m.Condition] = []
    tiers = _optional(raw, "tiers", p, _strings)
    if tiers is not None:
        if not tiers:
            raise InvalidInput("tiers must name at least one tier", field=p.key("tiers").text)
        found.append(m.TierIn(tiers))
    segment = _optional(raw, "segment", p, lambda r, k, q: _text(r, k, q, max_len=64))
    if segment is not None:
        found.append(m.InSegment(segment))
    if _optional(raw, "birthdayMonth", p, _bool):
        found.append(m.BirthdayMonth())
    return tuple(found)


def _conditions(raw: Mapping[str, Any] | None, p: _Path) -> tuple[m.Condition, ...]:
    if raw is None:
        return ()
    _only(raw, _CONDITIONS, p)
    found: list[m.Condition] = []
    spend = _optional(raw, "minSpendMinor", p, _positive)
    if spend is not None:
        found.append(m.MinSpend(spend))
    basket = _mapping(raw, "basketHas", p, required=False)
    if basket is not None:
        q = p.key("basketHas")
        _only(basket, frozenset({"categories", "skus"}), q)
        categories = _optional(basket, "categories", q, _strings) or frozenset()
        skus = _optional(basket, "skus", q, _strings) or frozenset()
        if not categories and not skus:
            raise InvalidInput("basketHas names at least one category or sku",
                               field=q.key("categories").text)
        found.append(m.BasketHas(categories, skus))
    schedule = _mapping(raw, "schedule", p, required=False)
    if schedule is not None:
        found.append(_schedule(schedule, p.key("schedule")))
    channels = _channels(raw, "channels", p)
    if channels:
        found.append(m.ChannelIn(channels))
    nth = _optional(raw, "nthPurchase", p, _positive)
    if nth is not None:
        found.append(m.NthPurchase(nth))
    if _optional(raw, "couponPresented", p, _bool):
        found.append(m.CouponPresented())
    if _optional(raw, "referralInEffect", p, _bool):
        found.append(m.ReferralInEffect())
    return tuple(found)


def _schedule(raw: Mapping[str, Any], p: _Path) -> m.Schedule:
    _only(raw, frozenset({"days", "start", "end", "timezone"}), p)
    days: set[int] = set()
    for i, day in enumerate(_list(raw, "days", p, required=False)):
        name = day.lower() if isinstance(day, str) else None
        if name not in WEEKDAYS:
            raise InvalidInput(f"a day is one of {', '.join(WEEKDAYS)}",
                               field=p.key("days").index(i).text)
        days.add(WEEKDAYS.index(name))
    start = _optional(raw, "start", p, _time)
    end = _optional(raw, "end", p, _time)
    if (start is None) != (end is None):
        raise InvalidInput("give both start and end, or neither",
                           field=p.key("end" if end is None else "start").text)
    zone = _optional(raw, "timezone", p, lambda r, k, q: _text(r, k, q, max_len=64)) or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {zone!r} (an IANA name such as Europe/Kyiv)",
                           field=p.key("timezone").text) from None
    return m.Schedule(frozenset(days), start, end, zone)


def _effects(raw: Mapping[str, Any], p: _Path) -> tuple[m.Effect, ...]:
    items = _list(raw, "effects", p, required=True)
    if not items:
        raise InvalidInput("a campaign has at least one effect", field=p.key("effects").text)
    return tuple(_effect(item, p.key("effects").index(i)) for i, item in enumerate(items))


def _effect(raw: Any, p: _Path) -> m.Effect:
    if not isinstance(raw, Mapping):
        raise InvalidInput("an effect is an object with exactly one kind", field=p.text)
    given = [k for k in EFFECT_KINDS if raw.get(k) is not None]
    _only(raw, frozenset(EFFECT_KINDS), p)
    if len(given) != 1:
        raise InvalidInput(f"an effect sets exactly one of {', '.join(EFFECT_KINDS)}"
                           f" (got {len(given)})", field=p.text)
    (kind,) = given
    body = _mapping(raw, kind, p, required=True)
    assert body is not None
    return _EFFECT_PARSERS[kind](body, p.key(kind))


def _bonus(raw: Mapping[str, Any], p: _Path) -> m.Effect:
    _only(raw, frozenset({"points"}), p)
    return m.BonusPoints(_int(raw, "points", p, minimum=1))


def _multiplier(raw: Mapping[str, Any], p: _Path) -> m.Effect:
    _only(raw, frozenset({"factor", "categories", "skus"}), p)
    factor = _ratio(raw, "factor", p)
    if not 1 < factor <= 10:
        raise InvalidInput("factor must be above 1 and at most 10", field=p.key("factor").text)
    return m.Multiplier(factor, _optional(raw, "categories", p, _strings) or frozenset(),
                        _optional(raw, "skus", p, _strings) or frozenset())


def _cashback(raw: Mapping[str, Any], p: _Path) -> m.Effect:
    _only(raw, frozenset({"percent", "categories", "skus"}), p)
    percent = _ratio(raw, "percent", p)
    if not 0 < percent <= 100:
        raise InvalidInput("percent must be above 0 and at most 100",
                           field=p.key("percent").text)
    return m.Cashback(percent, _optional(raw, "categories", p, _strings) or frozenset(),
                      _optional(raw, "skus", p, _strings) or frozenset())


def _till(raw: Mapping[str, Any], p: _Path) -> m.Effect:
    _only(raw, frozenset({"kind", "code", "description", "valueMinor", "percent"}), p)
    percent = _optional(raw, "percent", p, _ratio)
    if percent is not None and not 0 < percent <= 100:
        raise InvalidInput("percent must be above 0 and at most 100",
                           field=p.key("percent").text)
    return m.TillReward(
        kind=_enum(raw, "kind", p, m.RewardKind, default=None),
        code=_text(raw, "code", p, max_len=64),
        description=_text(raw, "description", p, max_len=200),
        value_minor=_optional(raw, "valueMinor", p, _positive),
        percent=percent)


def _discount(raw: Mapping[str, Any], p: _Path) -> m.Effect:
    _only(raw, frozenset({"pointValueMinor"}), p)
    value = _ratio(raw, "pointValueMinor", p)
    if value <= 0:
        raise InvalidInput("pointValueMinor must be positive",
                           field=p.key("pointValueMinor").text)
    return m.PointsDiscount(value)


def _referral(raw: Mapping[str, Any], p: _Path) -> m.Effect:
    _only(raw, frozenset({"referrerPoints", "referredPoints"}), p)
    referrer = _int(raw, "referrerPoints", p, minimum=0)
    referred = _int(raw, "referredPoints", p, minimum=0)
    if referrer + referred == 0:
        raise InvalidInput("a referral reward gives points to someone",
                           field=p.key("referrerPoints").text)
    return m.ReferralReward(referrer, referred)


_EFFECT_PARSERS: dict[str, Callable[[Mapping[str, Any], _Path], m.Effect]] = {
    "bonusPoints": _bonus, "multiplier": _multiplier, "cashback": _cashback,
    "tillReward": _till, "pointsDiscount": _discount, "referralReward": _referral,
}


def _limits(raw: Mapping[str, Any] | None, p: _Path) -> m.Limits:
    if raw is None:
        return m.Limits()
    _only(raw, frozenset({"budgetPoints", "maxRewards", "perMember"}), p)
    per_member = []
    for i, item in enumerate(_list(raw, "perMember", p, required=False)):
        q = p.key("perMember").index(i)
        if not isinstance(item, Mapping):
            raise InvalidInput("a member limit is an object", field=q.text)
        _only(item, frozenset({"window", "points", "count"}), q)
        limit = m.MemberLimit(
            _enum(item, "window", q, m.Window, default=None),
            _optional(item, "points", q, _positive),
            _optional(item, "count", q, _positive))
        if limit.points is None and limit.count is None:
            raise InvalidInput("a member limit sets points, count or both",
                               field=q.key("points").text)
        per_member.append(limit)
    return m.Limits(_optional(raw, "budgetPoints", p, _positive),
                    _optional(raw, "maxRewards", p, _positive), tuple(per_member))


def _stacking(raw: Mapping[str, Any] | None, p: _Path) -> m.Stacking:
    if raw is None:
        return m.Stacking()
    _only(raw, frozenset({"exclusive", "priority"}), p)
    return m.Stacking(
        exclusive=bool(_optional(raw, "exclusive", p, _bool)),
        priority=_optional(raw, "priority", p,
                           lambda r, k, q: _int(r, k, q, minimum=-1000, maximum=1000)) or 0)


# --- scalars ----------------------------------------------------------------------------------
class _Path:
    """A dotted camelCase field path: ``effects[1].multiplier.factor``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def key(self, name: str) -> _Path:
        return _Path(f"{self.text}.{name}" if self.text else name)

    def index(self, i: int) -> _Path:
        return _Path(f"{self.text}[{i}]")


def _only(raw: Mapping[str, Any], allowed: frozenset[str], p: _Path) -> None:
    for key in raw:
        if key not in allowed:
            raise InvalidInput(f"unknown field {key!r}; allowed: {', '.join(sorted(allowed))}",
                               field=p.key(str(key) or "''").text)


def _optional(raw: Mapping[str, Any], key: str, p: _Path,
              parse: Callable[[Mapping[str, Any], str, _Path], T]) -> T | None:
    return None if raw.get(key) is None else parse(raw, key, p)


def _required(raw: Mapping[str, Any], key: str, p: _Path) -> Any:
    value = raw.get(key)
    if value is None:
        raise InvalidInput(f"{key} is required", field=p.key(key).text)
    return value


def _text(raw: Mapping[str, Any], key: str, p: _Path, *, max_len: int = 64,
          pattern: re.Pattern[str] | None = None) -> str:
    value = _required(raw, key, p)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise InvalidInput(f"{key} must be text of 1 to {max_len} characters, not blank",
                           field=p.key(key).text)
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(f"{key} must be 1 to 48 of a-z, 0-9, '.', '_', '-', starting with a "
                           "letter or digit", field=p.key(key).text)
    return value


def _int(raw: Mapping[str, Any], key: str, p: _Path, *, minimum: int,
         maximum: int = 10**12) -> int:
    value = _required(raw, key, p)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInput(f"{key} must be a whole number from {minimum} to {maximum}",
                           field=p.key(key).text)
    return value


def _positive(raw: Mapping[str, Any], key: str, p: _Path) -> int:
    return _int(raw, key, p, minimum=1)


def _bool(raw: Mapping[str, Any], key: str, p: _Path) -> bool:
    value = _required(raw, key, p)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false", field=p.key(key).text)
    return value


def _ratio(raw: Mapping[str, Any], key: str, p: _Path) -> Fraction:
    """A decimal or ``p/q`` string: a float would not be exact, so it is refused."""
    value = _required(raw, key, p)
    if isinstance(value, str) and len(value) <= 32:
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            pass
    raise InvalidInput(f"{key} must be an exact ratio as a string, such as \"1.5\" or \"3/2\"",
                       field=p.key(key).text)


def _datetime(raw: Mapping[str, Any], key: str, p: _Path) -> datetime:
    value = _required(raw, key, p)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{key} must be an ISO 8601 time with its offset, such as "
                           "2026-12-01T00:00:00+02:00", field=p.key(key).text)
    return value.astimezone(UTC)


def _time(raw: Mapping[str, Any], key: str, p: _Path) -> time:
    value = _required(raw, key, p)
    if isinstance(value, str) and re.fullmatch(r"\d\d:\d\d", value):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, time) and value.tzinfo is None:
        return value.replace(second=0, microsecond=0)
    raise InvalidInput(f"{key} must be a local time HH:MM", field=p.key(key).text)


def _list(raw: Mapping[str, Any], key: str, p: _Path, *, required: bool) -> list[Any]:
    value = raw.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{key} is required", field=p.key(key).text)
        return []
    if not isinstance(value, list | tuple) or len(value) > _MAX_LIST:
        raise InvalidInput(f"{key} must be a list of at most {_MAX_LIST}",
                           field=p.key(key).text)
    return list(value)


def _strings(raw: Mapping[str, Any], key: str, p: _Path) -> frozenset[str]:
    items = _list(raw, key, p, required=True)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip() or len(item) > 64:
            raise InvalidInput("each must be text of 1 to 64 characters",
                               field=p.key(key).index(i).text)
    return frozenset(items)


def _channels(raw: Mapping[str, Any], key: str, p: _Path) -> frozenset[str]:
    names = _optional(raw, key, p, _strings) or frozenset()
    lowered = frozenset(n.lower() for n in names)
    for i, name in enumerate(sorted(lowered)):
        if name not in CHANNELS:
            raise InvalidInput(f"a channel is one of {', '.join(sorted(CHANNELS))}",
                               field=p.key(key).index(i).text)
    return lowered


def _mapping(raw: Mapping[str, Any], key: str, p: _Path,
             *, required: bool) -> Mapping[str, Any] | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{key} is required", field=p.key(key).text)
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{key} must be an object", field=p.key(key).text)
    return value


E = TypeVar("E", bound=enum.Enum)


def _enum(raw: Mapping[str, Any], key: str, p: _Path, kind: type[E], *, default: E | None) -> E:
    value = raw.get(key)
    if value is None and default is not None:
        return default
    text = getattr(value, "value", value)  # a GraphQL enum member arrives as itself
    options = [member.value for member in kind]
    if isinstance(text, str) and text.lower() in options:
        return kind(text.lower())
    raise InvalidInput(f"{key} must be one of {', '.join(options)}", field=p.key(key).text)
