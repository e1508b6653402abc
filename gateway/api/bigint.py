"""The ``BigInt`` scalar: settlement's amounts and points, which can exceed GraphQL's 32-bit
``Int``, as decimal strings. Its own module so every settlement type module can use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, NewType

import strawberry

if TYPE_CHECKING:  # to mypy a BigInt is an int; to GraphQL a scalar serialised as a string
    BigInt = int
else:
    BigInt = NewType("BigInt", int)

# Registered on the schema through StrawberryConfig.scalar_map (gateway.api.schema).
BIG_INT_SCALAR = strawberry.scalar(
    name="BigInt", serialize=str, parse_value=int,
    description="An integer of any size as a decimal string (money in minor units, points).",
)


# Money in minor units: 64-bit on the wire (issue 9: a sale above 21,474,836.47 did not fit
# GraphQL's 32-bit Int), yet still a JSON number, so partners' parsers keep reading a number.
# JSON numbers are exact up to 2^53 - 1 in every common client; the domain caps amounts at
# 10^13 minor units, far below it. Anything that is not an integer in that range is refused
# while the request is validated, before anything runs.
MAX_SAFE_INTEGER = 2**53 - 1

if TYPE_CHECKING:
    MinorUnits = int
else:
    MinorUnits = NewType("MinorUnits", int)


def _minor_units(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        else:
            raise ValueError(f"MinorUnits must be an integer, got {value!r}")
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"MinorUnits must be within ±{MAX_SAFE_INTEGER}, got {value}")
    return value


MINOR_UNITS_SCALAR = strawberry.scalar(
    name="MinorUnits", serialize=_minor_units, parse_value=_minor_units,
    description="An amount of money in integer minor units, 64-bit, as a JSON number (exact up "
                "to 2^53 - 1; the gateway accepts at most 10^13). Variables may also send it as "
                "a decimal string.",
)
