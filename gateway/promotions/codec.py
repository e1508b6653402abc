"""A campaign version as canonical JSON (how ``campaign_versions.definition`` stores it) and
back. Union members carry their class name in ``"type"``; ``Fraction`` is a ``"p/q"`` string,
``frozenset`` a sorted list, ``datetime`` ISO 8601 UTC, ``time`` ``"HH:MM"``. This is the
storage format, not the input format: input is parsed and validated field by field by
``gateway.promotions.manage`` (errors name the field)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime, time
from fractions import Fraction
from typing import Any

from gateway.promotions import model

_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in vars(model).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}


def dumps(campaign: model.Campaign) -> str:
    return json.dumps(_encode(campaign), sort_keys=True, separators=(",", ":"))


def loads(text: str) -> model.Campaign:
    value = _decode(json.loads(text), model.Campaign)
    assert isinstance(value, model.Campaign)
    return value


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out["type"] = type(value).__name__
        return out
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, frozenset):
        return sorted(_encode(v) for v in value)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(raw: Any, hint: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if isinstance(raw, dict) and "type" in raw:
            return _decode(raw, _CLASSES[raw["type"]])
        return _decode(raw, options[0])
    if origin is tuple:
        (item, *_) = typing.get_args(hint)
        return tuple(_decode(v, item) for v in raw)
    if origin is frozenset:
        (item,) = typing.get_args(hint)
        return frozenset(_decode(v, item) for v in raw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        cls = _CLASSES.get(raw.get("type", hint.__name__), hint)
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _decode(raw[f.name], hints[f.name])
                      for f in dataclasses.fields(cls) if f.name in raw})
    if hint is Fraction:
        return Fraction(raw)
    if hint is datetime:
        return datetime.fromisoformat(raw)
    if hint is time:
        return time.fromisoformat(raw)
    if isinstance(hint, type) and issubclass(hint, str) and hint is not str:
        return hint(raw)  # a StrEnum
    return raw
