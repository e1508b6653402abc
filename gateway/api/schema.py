"""The GraphQL schema: root types composed from per-area mixins, with the protective extensions.

``schema.graphql`` at the repository root is this schema printed (``gateway schema``); a contract
test keeps the two equal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from gateway.api import errors
from gateway.api.members import MemberMutations, MemberQueries
from gateway.api.points import PointsMutations, PointsQueries
from gateway.settings import Limits, Settings


@strawberry.type(description="Read your customers' points, and preview earns.")
class Query(MemberQueries, PointsQueries):
    pass


@strawberry.type(description="Move points. Every mutation returns Success | typed errors.")
class Mutation(MemberMutations, PointsMutations):
    pass


def _mask(error: GraphQLError) -> bool:
    """Hide anything a resolver did not expect; keep GraphQL's own parse/validation messages
    (they say what is wrong with the query) and our typed domain errors."""
    original = error.original_error
    return original is not None and not errors.is_domain_error(original)


def extensions_for(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    limits: Limits = settings.limits
    found: list[Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: QueryDepthLimiter(max_depth=limits.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=limits.max_aliases),
        lambda: MaskErrors(should_mask_error=_mask, error_message="Unexpected error."),
    ]
    if not settings.introspection_enabled:
        found.append(DisableIntrospection)
    return found


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    config: Any = StrawberryConfig()
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[errors.NotFoundError],
        extensions=extensions_for(settings),
        config=config,
    )


def print_sdl() -> str:
    return str(build_schema()) + "\n"
