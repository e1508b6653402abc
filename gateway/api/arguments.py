"""Every root-field argument is checked and normalised once, here, before any resolver runs.

Rules that hold for every operation belong in one place rather than in each resolver:

* no text may hold NUL (U+0000): PostgreSQL's text cannot store it (schemathesis found that);
* no text may hold a lone surrogate (``"\\ud800"`` is valid JSON but not Unicode): it failed
  as an unexpected error when encoded for the database;
* every id argument (a name ending in ``Id``, ``Ids`` or ``Key``: customerId, purchaseId,
  holdId, idempotencyKey, partnerId, ...) is normalised to NFC, so that one customer typed
  two ways is one customer; it may hold no control (Cc), format (Cf) or surrogate (Cs)
  character and at most ``MAX_ID_LENGTH`` characters (a 60,000-character id was accepted
  and echoed back); idempotency keys keep the 200 characters the contract has always allowed
  (``gateway.ledger.context.MAX_KEY_LENGTH``): a partner's retry must not start failing;
* every date-time with an offset must exist in UTC, where it is stored and compared:
  ``9999-12-31T23:59:59-14:00`` is a valid ISO 8601 value past ``datetime.max`` in UTC, and
  ``expiresAt``, ``validFrom`` or ``occurredAt`` holding one failed as an unexpected error.

A violation is ``InvalidInputError`` naming the argument (``input.customerId``), inside the
field's result union when it has one (every mutation's has), else a top-level error with that
code. The resolver receives the normalised values."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLUnionType, get_named_type
from strawberry.extensions import SchemaExtension

from gateway.api import errors
from gateway.core.errors import InvalidInput
from gateway.ledger.context import MAX_KEY_LENGTH

MAX_ID_LENGTH = 128
_MAX_LENGTH = {"idempotencyKey": MAX_KEY_LENGTH}
_REJECTED_IN_IDS = {"Cc": "control", "Cf": "format", "Cs": "surrogate"}


def is_id_argument(name: str) -> bool:
    return name.endswith(("Id", "Ids", "Key"))


def normalise(value: Any, path: str, *, is_id: bool = False) -> Any:
    """``value`` with every id text in NFC; raises ``InvalidInput`` naming the first bad one."""
    return _normalise(value, path, is_id)


def _normalise(value: Any, path: str, is_id: bool) -> Any:
    if isinstance(value, str):
        return _text(value, path, is_id)
    if isinstance(value, (list, tuple)):
        return [_normalise(item, f"{path}[{index}]", is_id)
                for index, item in enumerate(value)]
    if isinstance(value, dict):  # input objects arrive as graphql-core's coerced dicts
        return {name: _normalise(item, f"{path}.{name}", is_id_argument(name))
                for name, item in value.items()}
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(f"{path} is outside the years 1 to 9999 in UTC",
                               field=path) from None
    return value


def _text(value: str, path: str, is_id: bool) -> str:
    if "\x00" in value:
        raise InvalidInput(f"{path} must not contain NUL characters (U+0000)", field=path)
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise InvalidInput(f"{path} must be valid Unicode (it holds a lone surrogate)",
                           field=path)
    if not is_id:
        return value
    value = unicodedata.normalize("NFC", value)
    for char in value:
        kind = _REJECTED_IN_IDS.get(unicodedata.category(char))
        if kind is not None:
            raise InvalidInput(f"{path} must not contain {kind} characters "
                               f"(U+{ord(char):04X})", field=path)
    cap = _MAX_LENGTH.get(path.rsplit(".", 1)[-1].split("[", 1)[0], MAX_ID_LENGTH)
    if len(value) > cap:
        raise InvalidInput(f"{path} must be at most {cap} characters", field=path)
    return value


class NormaliseArguments(SchemaExtension):
    """Applies ``normalise`` to the arguments of each root field (see the module docstring)."""

    def resolve(self, _next: Callable[..., Any], root: Any, info: Any, *args: Any,
                **kwargs: Any) -> Any:
        if info.path.prev is None and kwargs:
            try:
                kwargs = {name: normalise(value, name, is_id=is_id_argument(name))
                          for name, value in kwargs.items()}
            except InvalidInput as error:
                if _has_union_member(info.return_type, "InvalidInputError"):
                    return errors.to_error(error, (errors.InvalidInputError,))
                raise
        return _next(root, info, *args, **kwargs)


def _has_union_member(graphql_type: Any, name: str) -> bool:
    """A field whose result is a union answers its errors inside it, as a typed member."""
    named = get_named_type(graphql_type)
    return isinstance(named, GraphQLUnionType) and any(t.name == name for t in named.types)
