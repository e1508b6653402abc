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
