"""The GraphQL schema: root types composed from per-area mixins, with the protective extensions.

It is served as an Apollo Federation v2 subgraph (``gateway.api.federation``). ``schema.graphql``
at the repository root is this schema printed (``gateway schema``), ``schema.subgraph.graphql``
its subgraph SDL (``gateway schema --federation``); contract tests keep both equal."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext, ExecutionResult

from gateway.api import errors
from gateway.api import settlement as settlement_api
from gateway.api.arguments import NormaliseArguments
from gateway.api.bigint import MINOR_UNITS_SCALAR, MinorUnits
from gateway.api.challenges import ChallengeMutations, ChallengeQueries
from gateway.api.coupons import CouponMutations, CouponQueries
from gateway.api.documents import CachedDocuments
from gateway.api.draws import DrawMutations, DrawQueries
from gateway.api.federation import (
    FEDERATION_VERSION,
    FederationQueries,
    served_sdl,
    subgraph_sdl,
)
from gateway.api.members import Member, MemberMutations, MemberQueries
from gateway.api.notifications import NotificationMutations
from gateway.api.offers import OfferMutations, OfferQueries
from gateway.api.one_mutation import OneMutationPerOperation
from gateway.api.pages import CheckPageSizes
from gateway.api.points import PointsMutations, PointsQueries
from gateway.api.reports import ReportQueries
from gateway.api.segments import SegmentMutations, SegmentQueries
from gateway.api.settlement import SettlementMutations, SettlementQueries
from gateway.api.viewer import ViewerQueries
from gateway.api.viewer_actions import ViewerMutations
from gateway.api.webhooks import WebhookMutations, WebhookQueries
from gateway.core.errors import DomainError
from gateway.settings import Limits, Settings


@strawberry.type(description="Read your customers' points, and preview earns.")
class Query(MemberQueries, PointsQueries, SettlementQueries, ViewerQueries, OfferQueries,
            SegmentQueries, FederationQueries, CouponQueries, WebhookQueries, DrawQueries,
            ChallengeQueries, ReportQueries):
    pass


@strawberry.type(description="Move points. Every mutation returns Success | typed errors.")
class Mutation(MemberMutations, PointsMutations, SettlementMutations, ViewerMutations,
               OfferMutations, SegmentMutations, CouponMutations, NotificationMutations,
               WebhookMutations, DrawMutations, ChallengeMutations):
    pass


def _mask(error: GraphQLError) -> bool:
    """Hide anything a resolver did not expect; keep GraphQL's own parse, validation and
    variable-coercion messages (they say what is wrong with the request) and our typed domain
    errors. A coercion error wraps another ``GraphQLError`` (itself perhaps caused by a
    ``KeyError`` for an unknown enum value): that is GraphQL's message, not an escape."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    return not errors.is_domain_error(original)


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class HideSuggestions(SchemaExtension):
    """Drop graphql-core's "Did you mean ...?" hints from error messages (production only).

    The hints spell out the names of fields, arguments, types and enum values close to what the
    client typed: the schema that turning introspection off keeps private. graphql-core 3.3 has a
    ``hide_suggestions`` flag, but Strawberry passes it neither to ``validate`` nor to variable
    coercion, so the messages are rewritten here, after both."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, (GraphQLExecutionResult, ExecutionResult)) and result.errors:
            result.errors = [_without_suggestion(error) for error in result.errors]


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(message, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path,
                        original_error=error.original_error, extensions=error.extensions)


class DomainErrorCodes(SchemaExtension):
    """A domain error raised from a field that has no result union (a page size out of range,
    a bad cursor) still carries its stable ``code`` and ``field`` in ``extensions``."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, (GraphQLExecutionResult, ExecutionResult)) and result.errors:
            result.errors = [_with_code(error) for error in result.errors]


def _with_code(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if not isinstance(original, DomainError):
        return error
    extensions = {**(error.extensions or {}), "code": str(original.code),
                  "field": original.field}
    return GraphQLError(error.message, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path,
                        original_error=original, extensions=extensions)


def validation_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    """The rules added to GraphQL's own, built once per ``Limits`` (see ``extensions_for``);
    registering a trusted document checks it against the same ones."""
    return _limit_rules(limits.max_depth, limits.max_aliases)


@lru_cache(maxsize=8)
def _limit_rules(max_depth: int, max_aliases: int) -> tuple[type[ASTValidationRule], ...]:
    return tuple(
        QueryDepthLimiter(max_depth=max_depth).validation_rules
        + MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules
        + [OneMutationPerOperation]
    )


def extensions_for(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    limits: Limits = settings.limits
    # The depth and alias limiters are validation rules, and each limiter instance builds a new
    # rule class. The validation cache keys on (schema, document, rules), so a limiter built per
    # request (extensions are factories) made every request a cache miss: validation ran every
    # time, about a quarter of an earnPoints request's CPU (docs/benchmarks.md). The rule
    # classes are built once (``validation_rules``) and every request adds the very same ones.
    limit_rules = validation_rules(limits)
    found: list[Callable[[], SchemaExtension]] = [
        CachedDocuments,  # parse and validation caches, and trusted documents' own
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: AddValidationRules(list(limit_rules)),
        lambda: MaskErrors(should_mask_error=_mask, error_message="Unexpected error."),
        DomainErrorCodes,
        NormaliseArguments,
        lambda: CheckPageSizes(page_cap=limits.max_page_size),
    ]
    if not settings.introspection_enabled:
        found.append(DisableIntrospection)
    if settings.production:
        found.append(HideSuggestions)
    return found


_log = logging.getLogger("strawberry.execution")


class GatewaySchema(strawberry.federation.Schema):
    """Logs what went wrong by whose fault: a client's mistake (a domain error such as a bad
    cursor or ``first`` out of range, a syntax or validation error) at info, one line, no
    traceback; only an unexpected exception at error level with its traceback. Strawberry
    logged every one at error level with a traceback, so alerts fired on clients' typos."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, (DomainError, GraphQLError)):
                code = (original.code if isinstance(original, DomainError)
                        else (error.extensions or {}).get("code", "GRAPHQL"))
                _log.info("request error %s: %s", code, error.message,
                          extra={"error_code": str(code)})
            else:
                _log.error(error, exc_info=original)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    limits = settings.limits
    # Batching stays off (Strawberry answers a JSON array with 400) unless the limits allow it.
    config: Any = StrawberryConfig(
        batching_config={"max_operations": limits.max_batch_operations}
        if limits.allow_batching else None,
        scalar_map={settlement_api.BigInt: settlement_api.BIG_INT_SCALAR,
                    MinorUnits: MINOR_UNITS_SCALAR},
    )
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        types=[errors.NotFoundError, Member],  # Member: the entity, whatever reaches it
        extensions=extensions_for(settings),
        config=config,
        federation_version=FEDERATION_VERSION,
    )


def print_sdl() -> str:
    return served_sdl(build_schema())


def print_subgraph_sdl() -> str:
    """What ``_service { sdl }`` answers: the input of a partner's supergraph composition."""
    return subgraph_sdl(build_schema())
