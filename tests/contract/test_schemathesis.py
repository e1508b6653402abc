"""Generated requests against the real app, in process: whatever a partner sends, the gateway
answers in JSON, never with a 5xx, never with a Python traceback or exception name, and never with
"Unexpected error." (that is an exception nobody planned for: a bug).

Schemathesis 4 loads the schema from the ASGI app by introspection and generates cases with
hypothesis-graphql, in both of its GraphQL modes: positive (valid queries and mutations with
arbitrary values) and negative (arguments that break the schema, which validation must refuse).
Its own GraphQL checks are not used: they count any error that has a ``path`` as a server
error, and ``history(first: 0)`` is refused that way on purpose. The checks here are stricter
where it matters (masked errors, leaks, typed error results carrying ``code``).

Every root field returns a union, and a generated selection rarely asks for ``__typename`` or
``code``; so each query is first given ``__typename ... on Error { code message }`` under every
union-typed field, so that every typed error can be checked. The exceptions are Apollo
Federation's ``_entities`` (its ``_Entity`` union holds entities, not results: a refusal is a
top-level typed error) and ``_service``; ``_entities`` gets representations of seeded, unknown
and malformed kinds from a strategy registered for its ``_Any`` scalar.

The hand-written negatives at the end cover what a generator does not send: broken bodies,
wrong variable types, and an Int beyond 32 bits."""

from __future__ import annotations

import asyncio
import builtins
import inspect
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy.exc
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLUnionType,
    NameNode,
    ObjectFieldNode,
    ObjectValueNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    Visitor,
    get_named_type,
    parse,
    print_ast,
    validate,
    visit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from gateway.api.bigint import MAX_SAFE_INTEGER
from gateway.api.schema import build_schema
from gateway.app import Gateway
from gateway.core import errors as domain
from tests.support.harness import make_gateway, partner_api

# Money in minor units (gateway.api.bigint.MinorUnits): any integer a JSON number holds exactly.
schemathesis.graphql.scalar("MinorUnits", st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
                            .map(nodes.Int))

EXAMPLES_PER_MODE = 150
SETTINGS = settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

ERROR_CODES = {code.name for code in domain.ErrorCode}
# Customer ids hypothesis-graphql often generates: enrolled, with points, so that generated
# queries reach Member.balance and Member.history too.
SEEDED_CUSTOMERS = ("0", "1", "A", "T", "a")
ENTITY_UNION = "_Entity"  # Apollo Federation's union of entities: no errors in it


def _field(name: str, value: ValueNode) -> ObjectFieldNode:
    return ObjectFieldNode(name=NameNode(value=name), value=value)


def representations() -> st.SearchStrategy[ValueNode]:
    """``_Any`` values for ``_entities``: mostly well-formed Member representations (seeded or
    not), some with another type name, a missing or non-string customer id, or no object."""
    customer = st.one_of(st.sampled_from(SEEDED_CUSTOMERS), st.text(max_size=140))
    member = customer.map(lambda c: ObjectValueNode(fields=(
        _field("__typename", nodes.String("Member")), _field("customerId", nodes.String(c)))))
    malformed = st.one_of(
        st.text(max_size=20).map(lambda t: ObjectValueNode(fields=(
            _field("__typename", nodes.String(t)), _field("customerId", nodes.String("0"))))),
        st.integers().map(lambda n: ObjectValueNode(fields=(
            _field("__typename", nodes.String("Member")), _field("customerId", nodes.Int(n))))),
        st.just(ObjectValueNode(fields=(_field("__typename", nodes.String("Member")),))),
        st.text(max_size=20).map(nodes.String),
    )
    return st.one_of(member, member, member, member, malformed)


def _exception_names() -> set[str]:
    found = {name for name, value in vars(builtins).items()
             if isinstance(value, type) and issubclass(value, BaseException)}
    for module in (sqlalchemy.exc, domain):
        found |= {name for name, value in inspect.getmembers(module, inspect.isclass)
                  if issubclass(value, BaseException)}
    return found


LEAK = re.compile(r"Traceback|File \"|\b(" + "|".join(sorted(_exception_names())) + r")\b")


# --- the app under test ---------------------------------------------------------------------------

@dataclass
class Target:
    gateway: Gateway
    headers: dict[str, str]
    schema: Any  # schemathesis.specs.graphql.schemas.GraphQLSchema
    graphql: GraphQLSchema


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    gateway = make_gateway(tmp_path_factory.mktemp("schemathesis"))
    api = asyncio.run(partner_api(gateway, "grocery"))
    headers = {"Authorization": f"Bearer {api.token}"}
    for number, customer in enumerate(SEEDED_CUSTOMERS):  # one mutation per request
        asyncio.run(api.gql(SEED_ENROL, {"customer": customer}))
        asyncio.run(api.gql(SEED_EARN, {"customer": customer, "key": f"seed-{number}"}))
    schemathesis.graphql.scalar("_Any", representations())
    schema = schemathesis.graphql.from_asgi("/graphql", gateway.app, headers=headers)
    return Target(gateway, headers, schema, build_schema()._schema)


SEED_ENROL = """mutation($customer: ID!) {
  enrolCustomer(input: {customerId: $customer}) { ... on EnrolCustomerSuccess { created } } }"""
SEED_EARN = """mutation($customer: ID!, $key: String!) {
  earnPoints(input: {customerId: $customer, amount: {amountMinor: 120000, currency: "UAH"},
    channel: STORE, purchaseId: $key, idempotencyKey: $key}) { ... on EarnPointsSuccess {
    points } } }"""


# --- asking every union for its type and error code -----------------------------------------------

_ERROR_FIELDS = parse("{ __typename ... on Error { code message } }").definitions[0]


class _AskForErrors(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info

    def leave_field(self, node: FieldNode, *_: Any) -> FieldNode | None:
        if node.selection_set is None:
            return None
        named = get_named_type(self.type_info.get_type())
        if not isinstance(named, GraphQLUnionType) or named.name == ENTITY_UNION:
            return None
        extra = _ERROR_FIELDS.selection_set.selections  # type: ignore[attr-defined]
        return FieldNode(alias=node.alias, name=node.name, arguments=node.arguments,
                         directives=node.directives,
                         selection_set=SelectionSetNode(
                             selections=(*node.selection_set.selections, *extra)))


def ask_for_errors(query: str, schema: GraphQLSchema) -> str:
    try:
        document = parse(query)
    except GraphQLError:
        return query
    type_info = TypeInfo(schema)
    return print_ast(visit(document, TypeInfoVisitor(type_info, _AskForErrors(type_info))))


def test_ask_for_errors_reaches_every_union() -> None:
    schema = build_schema()._schema
    query = 'mutation { earnPoints(input: {}) { ... on EarnPointsSuccess { points } } }'
    assert ask_for_errors(query, schema) == (
        "mutation {\n  earnPoints(input: {  }) {\n    ... on EarnPointsSuccess {\n      points\n"
        "    }\n    __typename\n    ... on Error {\n      code\n      message\n    }\n  }\n}")
    nested = '{ member(customerId: "x") { ... on Member { balance { held } } } }'
    assert ask_for_errors(nested, schema) == (  # Balance is no union: left alone
        '{\n  member(customerId: "x") {\n    ... on Member {\n      balance {\n        held\n'
        "      }\n    }\n    __typename\n    ... on Error {\n      code\n      message\n    }\n"
        "  }\n}")


# --- the checks -----------------------------------------------------------------------------------

def typed_results(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "__typename" in value:
            yield value
        for child in value.values():
            yield from typed_results(child)
    elif isinstance(value, list):
        for child in value:
            yield from typed_results(child)


def content_type(response: httpx.Response | Any) -> str:
    """httpx has one value per header; a schemathesis ``Response`` has a list."""
    for name, value in response.headers.items():
        if name.lower() == "content-type":
            return str(value[0] if isinstance(value, list) else value)
    return ""


def returns_union(path: list[str | int], schema: GraphQLSchema) -> bool:
    """Whether the field at ``path`` returns a union. A resolver error there escaped the union
    it should have been typed into; elsewhere (``history(first: 0)``) it is how an argument of
    a plain field is refused."""
    candidates: list[Any] = [schema.query_type, schema.mutation_type]
    returned: Any = None
    for key in path:
        if isinstance(key, int):  # a list index
            continue
        fields = [c.fields[key] for c in candidates if c is not None and key in c.fields]
        if not fields:  # an alias: the generator does not use them at present
            return False
        returned = get_named_type(fields[0].type)
        candidates = list(returned.types) if isinstance(returned, GraphQLUnionType) else [returned]
    return isinstance(returned, GraphQLUnionType) and returned.name != ENTITY_UNION


def test_returns_union() -> None:
    schema = build_schema()._schema
    assert returns_union(["enrolCustomer"], schema)
    assert returns_union(["member"], schema)
    assert not returns_union(["member", "history"], schema)
    assert not returns_union(["member", "history", "edges", 0, "node"], schema)
    assert not returns_union(["_entities"], schema)


def check(response: httpx.Response | Any, query: str, error_types: set[str],
          schema: GraphQLSchema) -> dict[str, Any]:
    """Everything a partner may rely on, whatever they sent. Returns the parsed body."""
    where = f"for the query:\n{query}\nthe gateway answered {response.status_code}:\n" \
            f"{response.text[:2000]}"
    assert response.status_code < 500, where
    assert content_type(response).startswith("application/json"), where
    body = json.loads(response.text)
    assert isinstance(body, dict), where
    assert not LEAK.search(response.text), where
    for error in body.get("errors") or []:
        message = error.get("message")
        assert isinstance(message, str) and message.strip(), where
        assert message != "Unexpected error.", f"an unexpected exception escaped {where}"
        if "path" in error:
            assert not returns_union(error["path"], schema), (
                f"a field with a result union failed outside it (untyped) {where}")
    for result in typed_results(body.get("data")):
        if result["__typename"] in error_types:
            assert result.get("code") in ERROR_CODES, where
            assert isinstance(result.get("message"), str) and result["message"], where
    return body


def error_type_names(schema: GraphQLSchema) -> set[str]:
    return {t.name for t in schema.get_possible_types(schema.type_map["Error"])}  # type: ignore[arg-type]


def _valid(query: str, schema: GraphQLSchema) -> bool:
    try:
        return not validate(schema, parse(query))
    except GraphQLError:
        return False


def run_mode(target: Target, mode: GenerationMode, schema: Any = None) -> Counter[str]:
    """Run one generation mode; return what came back, by root field and result type."""
    schema = target.schema if schema is None else schema
    error_types = error_type_names(target.graphql)
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(case=schema.as_strategy(mode, headers=target.headers))
    def run(case: Any) -> None:
        case.body = ask_for_errors(case.body, target.graphql)
        response = case.call()
        body = check(response, case.body, error_types, target.graphql)
        if mode is GenerationMode.NEGATIVE and _valid(case.body, target.graphql):
            # The negative generator has nothing to break in a field without arguments
            # (``exportMyData``): what it sends is a valid request, answered like one.
            outcomes["valid despite negative mode"] += 1
        elif mode is GenerationMode.NEGATIVE:
            assert body.get("errors") and body.get("data") is None, (
                f"invalid input was accepted:\n{case.body}\n{response.text[:2000]}")
            outcomes["rejected"] += 1
        for field, result in (body.get("data") or {}).items():
            if isinstance(result, list):  # _entities: Member is its union's only type
                kinds = sorted({"null" if item is None else "Member" for item in result})
                outcomes[f"{field}:[{','.join(kinds)}]"] += 1
            else:
                outcomes[f"{field}:{result.get('__typename') if result else None}"] += 1
        for error in body.get("errors") or []:
            if error.get("path") in (["_entities"], ["_service"]):
                outcomes[f"{error['path'][0]}:{error.get('extensions', {}).get('code')}"] += 1

    run()
    return outcomes


def test_positive_generated_requests(target: Target) -> None:
    outcomes = run_mode(target, GenerationMode.POSITIVE)
    # Not vacuous: the requests reached the resolvers, and typed errors were checked.
    assert sum(outcomes.values()) >= EXAMPLES_PER_MODE / 2, outcomes
    assert any(key.endswith("Error") for key in outcomes), outcomes


def test_negative_generated_requests(target: Target) -> None:
    outcomes = run_mode(target, GenerationMode.NEGATIVE)
    assert outcomes["rejected"] >= EXAMPLES_PER_MODE / 2, outcomes


def test_generated_federation_requests(target: Target) -> None:
    """Schemathesis leaves ``_entities`` and ``_service`` out unless asked: asked here."""
    federation = target.schema.include(name_regex=r"_entities|_service")
    positive = run_mode(target, GenerationMode.POSITIVE, federation)
    assert any(key.startswith("_entities:[") and "Member" in key for key in positive), positive
    assert positive["_entities:INVALID_INPUT"] and positive["_service:None"], positive
    negative = run_mode(target, GenerationMode.NEGATIVE, federation)
    assert negative["rejected"] >= EXAMPLES_PER_MODE / 2, negative


# --- hand-written negatives -----------------------------------------------------------------------

EARN = ('mutation { earnPoints(input: {customerId: "c", amount: {amountMinor: %s, '
        'currency: "UAH"}, channel: STORE, purchaseId: "p", idempotencyKey: "k"}) '
        '{ __typename } }')
PREVIEW = """query($customer: ID!, $amount: MoneyInput!, $channel: Channel!) { previewEarn(input: {
  customerId: $customer, amount: $amount, channel: $channel, purchaseId: "p",
  idempotencyKey: "k"}) { __typename } }"""
GOOD = {"customer": "c", "amount": {"amountMinor": 100, "currency": "UAH"}, "channel": "STORE"}
JSON = "application/json"


def body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


# (name, request body, content type, status, exact message of the first error)
HAND_WRITTEN: list[tuple[str, bytes, str, int, str]] = [
    ("malformed JSON", b'{"query": "{ __typename }"', JSON, 400,
     "Unable to parse request body as JSON"),
    ("empty body", b"", JSON, 400, "Unable to parse request body as JSON"),
    ("body a JSON string", b'"{ __typename }"', JSON, 400,
     "the request body must be a JSON object with a `query` string (or, with batching on, "
     "an array of them)"),
    ("body JSON null", b"null", JSON, 400,
     "the request body must be a JSON object with a `query` string (or, with batching on, "
     "an array of them)"),
    ("missing query", b'{"variables": {}}', JSON, 400, "No GraphQL query found in the request"),
    ("query not a string", b'{"query": 5}', JSON, 400,
     "The GraphQL operation's `query` must be a string or null, if provided."),
    ("variables not an object", b'{"query": "{ __typename }", "variables": [1]}', JSON, 400,
     "The GraphQL operation's `variables` must be an object or null, if provided."),
    ("not JSON at all", b"query=%7B__typename%7D", "application/x-www-form-urlencoded", 400,
     "Unsupported content type"),
    ("unknown operation name",
     b'{"query": "query A { __typename }", "operationName": "B"}', JSON, 400,
     'Unknown operation named "B".'),
    ("syntax error", body("{ member("), JSON, 200,
     "Syntax Error: Expected Name, found <EOF>."),
    ("unknown field", body("{ nope }"), JSON, 200, "Cannot query field 'nope' on type 'Query'."),
    ("money over 2^53, variable",
     body(PREVIEW, {**GOOD, "amount": {"amountMinor": 2**53, "currency": "UAH"}}), JSON,
     200, "Variable '$amount' has invalid value at .amountMinor: Expected value of type "
          "'MinorUnits', but encountered error 'MinorUnits must be within ±9007199254740991, "
          "got 9007199254740992'; found: 9007199254740992."),
    ("money as a float", body(PREVIEW, {**GOOD, "amount": {"amountMinor": 1.5,
                                                           "currency": "UAH"}}), JSON, 200,
     "Variable '$amount' has invalid value at .amountMinor: Expected value of type "
     "'MinorUnits', but encountered error 'MinorUnits must be an integer, got 1.5'; found: 1.5."),
    ("ID as a float", body(PREVIEW, {**GOOD, "customer": 1.5}), JSON, 200,
     "Variable '$customer' has invalid value: ID cannot represent value: 1.5"),
    ("required variable missing", body(PREVIEW, {"amount": GOOD["amount"],
                                                 "channel": "STORE"}), JSON, 200,
     "Variable '$customer' has invalid value: Expected a value of non-null type 'ID!' to be "
     "provided."),
    ("input object as a list", body(PREVIEW, {**GOOD, "amount": [100, "UAH"]}), JSON, 200,
     "Variable '$amount' has invalid value: Expected value of type 'MoneyInput' to be an "
     "object, found: [100, 'UAH']."),
    ("enum as a number", body(PREVIEW, {**GOOD, "channel": 1}), JSON, 200,
     "Variable '$channel' has invalid value: Enum 'Channel' cannot represent non-string "
     "value: 1."),
    ("enum unknown", body(PREVIEW, {**GOOD, "channel": "SHOP"}), JSON, 200,
     "Variable '$channel' has invalid value: Value 'SHOP' does not exist in 'Channel' enum."),
]


@pytest.mark.parametrize(("name", "content", "content_type", "status", "message"), HAND_WRITTEN,
                         ids=[case[0] for case in HAND_WRITTEN])
async def test_hand_written_negative(tmp_path: Path, name: str, content: bytes,
                                     content_type: str, status: int, message: str) -> None:
    api = await partner_api(make_gateway(tmp_path), "grocery")
    async with api.http() as client:
        response = await client.post("/graphql", content=content, headers={
            "Authorization": f"Bearer {api.token}", "Content-Type": content_type})
    schema = build_schema()._schema
    parsed = check(response, content.decode(), error_type_names(schema), schema)
    assert response.status_code == status, response.text
    assert parsed["errors"][0]["message"] == message
    assert parsed.get("data") is None
    if status == 400:
        assert parsed["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}


async def test_get_never_executes(tmp_path: Path) -> None:
    """GET serves the GraphiQL page in development and nothing else (it was a 500)."""
    api = await partner_api(make_gateway(tmp_path), "grocery")
    async with api.http() as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        query = await client.get("/graphql", params={"query": "{ __typename }"},
                                 headers={"Authorization": f"Bearer {api.token}"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert query.status_code == 405 and query.headers["allow"] == "POST"
    assert query.json()["errors"][0] == {"message": "send GraphQL as a POST with a JSON body",
                                         "extensions": {"code": "METHOD_NOT_ALLOWED"}}


async def test_get_in_production_serves_no_ide(tmp_path: Path) -> None:
    api = await partner_api(make_gateway(tmp_path, production=True), "grocery")
    async with api.http() as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 405
    assert "GraphiQL" not in page.text


def test_generated_campaign_requests(target: Target) -> None:
    """The campaign fields (offers:manage) take the largest input type: generated definitions
    of every shape answer a campaign or a typed error, never an unexpected one."""
    # createCampaign, publishCampaignVersion, endCampaign, campaigns, campaign,
    # simulateCampaign: no other root field has "ampaign" in its name.
    campaigns = target.schema.include(name_regex=r"[Cc]ampaign")
    positive = run_mode(target, GenerationMode.POSITIVE, campaigns)
    assert sum(positive.values()) >= EXAMPLES_PER_MODE / 2, positive
    assert any(key.startswith("createCampaign:") and key.endswith("Error")
               for key in positive), positive
    negative = run_mode(target, GenerationMode.NEGATIVE, campaigns)
    assert negative["rejected"] >= EXAMPLES_PER_MODE / 2, negative
