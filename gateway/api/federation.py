"""The Apollo Federation v2 subgraph surface: ``Query._entities`` and ``Query._service``.

Partners that run their own GraphQL platform compose the gateway into their supergraph, with
``Member`` an entity keyed by their own customer id (``@key(fields: "customerId")``): their
router sends ``_entities(representations: [{__typename: "Member", customerId: "c-1"}])`` and
gets the loyalty fields of that customer. Strawberry would add both fields itself; they are
defined here instead so that they obey the rules every other field obeys (DESIGN §8):

* both need the scope ``members:read`` and a partner-bound token (a member token is refused);
* ``_entities`` reads through the calling partner's own links, so another partner's customer
  id answers exactly like one that was never linked: ``null``, with no error;
* a request may name at most ``Limits.max_list_items`` representations; each must be
  ``{__typename: "Member", customerId: <text of 1..128 characters>}``, else
  ``INVALID_INPUT`` naming it (``representations[3].customerId``), before anything is read;
* ``_service { sdl }`` is the schema itself, so it is served only where introspection is.

``_service.sdl`` is the subgraph SDL as a schema-first subgraph would write it by hand:
the ``@link`` schema directive, the ``@key`` on ``Member``, and no federation plumbing
(``_entities``, ``_service``, ``_Any``, ``_Entity``, ``_Service``, which composition adds
back). ``schema.subgraph.graphql`` at the repository root is that text
(``gateway schema --federation``); a contract test keeps the two equal."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Final, Literal

import strawberry
from graphql import (
    DocumentNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    is_specified_directive,
    is_specified_scalar_type,
    parse,
    print_ast,
)
from graphql.utilities import print_directive, print_type
from strawberry.federation.schema import FederationAny
from strawberry.types import Info

from gateway.api.context import Context
from gateway.api.members import Member
from gateway.auth.scopes import Scope
from gateway.core.errors import Forbidden, InvalidInput
from gateway.members.service import MAX_CUSTOMER_ID

# @key is all we use: an older Federation 2 version composes with more of partners' routers.
FEDERATION_VERSION: Final[Literal["2.5"]] = "2.5"
SCOPE = Scope.MEMBERS_READ
_PLUMBING_TYPES = {"_Any", "_Entity", "_Service"}
_PLUMBING_FIELDS = {"_entities", "_service"}

Entity = Annotated[Member, strawberry.union("_Entity")]


@strawberry.type(name="_Service", description="This subgraph's schema, for composition.")
class Service:
    sdl: str = strawberry.field(description="The subgraph SDL (schema.subgraph.graphql).")


@strawberry.type
class FederationQueries:
    @strawberry.field(
        name="_entities",
        description="Apollo Federation: the members linked to your customer ids, in the order "
        "asked; null where no member is linked to that id here. Each representation is "
        '{__typename: "Member", customerId: "<your customer id>"}, at most 100 per request. '
        "Scope: members:read.")
    async def entities(self, info: Info[Context, None],
                       representations: list[FederationAny]) -> list[Entity | None]:
        c = info.context
        c.require(SCOPE)
        partner_id = c.partner_id
        customer_ids = _customer_ids(representations, c.max_lines)
        found = await c.loaders.memberships.load_many(
            [(partner_id, customer_id) for customer_id in customer_ids])
        return [None if membership is None else Member.of(membership) for membership in found]

    @strawberry.field(
        name="_service",
        description="Apollo Federation: this subgraph's SDL, for composing it into your "
        "supergraph. Off where introspection is off (production): compose from the "
        "published schema.subgraph.graphql. Scope: members:read.")
    def service(self, info: Info[Context, None]) -> Service:
        c = info.context
        c.require(SCOPE)
        if c.principal.partner_id is None:  # a partner field, like every other one
            raise Forbidden("a partner-bound token")
        if not c.services.settings.introspection_enabled:
            raise Forbidden("introspection", "the subgraph SDL is served only where "
                            "introspection is on; compose from schema.subgraph.graphql")
        return Service(sdl=subgraph_sdl(info.schema))


def _customer_ids(representations: list[Any], cap: int) -> list[str]:
    """The customer id of each representation, checked all before any is read."""
    if len(representations) > cap:
        raise InvalidInput(f"at most {cap} representations per request",
                           field="representations")
    found = []
    for index, representation in enumerate(representations):
        where = f"representations[{index}]"
        if not isinstance(representation, dict) or representation.get("__typename") != "Member":
            raise InvalidInput(f'{where} must be {{__typename: "Member", customerId: ...}}',
                               field=where)
        customer_id = representation.get("customerId")
        if not isinstance(customer_id, str) or not customer_id:
            raise InvalidInput(f"{where}.customerId must be a non-empty string",
                               field=f"{where}.customerId")
        if len(customer_id) > MAX_CUSTOMER_ID:
            raise InvalidInput(f"{where}.customerId must be at most {MAX_CUSTOMER_ID} "
                               "characters", field=f"{where}.customerId")
        found.append(customer_id)
    return found


def served_sdl(schema: Any) -> str:
    """The served schema as Strawberry prints it, plus what its printer leaves out for a
    federation schema: the definitions of ``@key`` and ``@link`` and of the types of their
    arguments. So ``schema.graphql`` parses on its own (``graphql.build_schema``, codegen),
    holds every type introspection shows, and still shows ``@key`` where it applies."""
    printed = str(schema)
    served = schema._schema
    named = {d.name.value for d in parse(printed).definitions if isinstance(d, TypeDefinitionNode)}
    extra = [print_directive(d) for d in served.directives if not is_specified_directive(d)]
    extra += [print_type(type_) for name, type_ in sorted(served.type_map.items())
              if name not in named and not name.startswith("__")
              and not is_specified_scalar_type(type_)]
    return "\n\n".join([printed, *extra]) + "\n"


@lru_cache(maxsize=8)
def subgraph_sdl(schema: Any) -> str:
    """The served schema without the federation plumbing (see the module docstring). Parsed
    from Strawberry's print, which defines neither ``@key`` nor ``@link`` (nor should a
    subgraph's SDL: composition brings them)."""
    document = parse(str(schema))
    kept = []
    for definition in document.definitions:
        if isinstance(definition, (ScalarTypeDefinitionNode, UnionTypeDefinitionNode,
                                   ObjectTypeDefinitionNode)) \
                and definition.name.value in _PLUMBING_TYPES:
            continue
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == "Query":
            fields = tuple(f for f in definition.fields or ()
                           if f.name.value not in _PLUMBING_FIELDS)
            definition = ObjectTypeDefinitionNode(
                name=definition.name, description=definition.description,
                interfaces=definition.interfaces, directives=definition.directives,
                fields=fields)
        kept.append(definition)
    return print_ast(DocumentNode(definitions=tuple(kept))) + "\n"
