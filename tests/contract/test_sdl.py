"""The published contract: ``schema.graphql`` is the code's schema, and the conventions of
DESIGN.md §9 hold for every type in it, including types added later.

The shape rules are read from the graphql-core schema Strawberry builds, not from the SDL text,
so they cannot be fooled by formatting."""

from __future__ import annotations

import difflib
from pathlib import Path

from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_non_null_type,
)

from gateway.api.members import MAX_PAGE
from gateway.api.schema import build_schema, print_sdl, print_subgraph_sdl
from gateway.settings import Limits

SDL_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
SUBGRAPH_FILE = SDL_FILE.with_name("schema.subgraph.graphql")
REGENERATE = ".venv/bin/python -m gateway schema > schema.graphql"
REGENERATE_SUBGRAPH = ".venv/bin/python -m gateway schema --federation > schema.subgraph.graphql"
# Apollo Federation's own definitions (its subgraph specification fixes their shape).
FEDERATION_PLUMBING = {"_Any", "_Entity", "_Service", "_FieldSet", "link__Import",
                       "link__Purpose"}
# Every connection field, with the test that proves its cap at run time (not only by its
# description). A new connection fails test_every_connection_caps_first until it joins here.
PROBED_CONNECTIONS = {
    "Member.history": "tests/api/test_limits.py::test_page_size",
    "Viewer.history": "tests/api/test_viewer_api.py::test_page_size_and_tokens_are_checked",
    "Viewer.notifications":
        "tests/api/test_notifications_api.py::test_feed_pages_marks_read_and_preferences",
}


def graphql_schema() -> GraphQLSchema:
    schema: GraphQLSchema = build_schema()._schema
    return schema


def object_fields(schema: GraphQLSchema) -> list[tuple[str, str, GraphQLField]]:
    return [(type_.name, name, field)
            for type_ in schema.type_map.values()
            if isinstance(type_, (GraphQLObjectType, GraphQLInterfaceType))
            and not type_.name.startswith("__")
            for name, field in type_.fields.items()]


def is_connection(type_: object) -> bool:
    named = get_named_type(type_)  # type: ignore[arg-type]
    return (isinstance(named, GraphQLObjectType)
            and {"edges", "pageInfo"} <= set(named.fields))


def assert_file_is(path: Path, printed: str, regenerate: str) -> None:
    on_disk = path.read_text(encoding="utf-8")
    if on_disk != printed:
        diff = "".join(difflib.unified_diff(
            on_disk.splitlines(keepends=True), printed.splitlines(keepends=True),
            f"{path.name} (committed)", "the code's", n=1))
        raise AssertionError(
            f"{path.name} is stale. Regenerate it from the repository root with\n\n"
            f"    {regenerate}\n\nand review the change:\n{diff}")


def test_schema_file_is_the_printed_schema() -> None:
    assert_file_is(SDL_FILE, print_sdl(), REGENERATE)


def test_schema_file_parses_alone_into_the_served_schema() -> None:
    """Codegen and ``graphql.build_schema`` read the file with nothing else: it defines the
    federation directives it applies, and holds every type and directive that is served."""
    from graphql import build_schema as parse_sdl

    served, parsed = graphql_schema(), parse_sdl(SDL_FILE.read_text(encoding="utf-8"))
    assert set(parsed.type_map) == set(served.type_map)
    assert {d.name for d in parsed.directives} == {d.name for d in served.directives}
    assert parsed.query_type is not None and served.query_type is not None
    assert set(parsed.query_type.fields) == set(served.query_type.fields)


def test_subgraph_file_is_the_printed_subgraph_sdl() -> None:
    assert_file_is(SUBGRAPH_FILE, print_subgraph_sdl(), REGENERATE_SUBGRAPH)


def test_subgraph_sdl_is_the_served_schema_less_the_federation_plumbing() -> None:
    """Every type and field a client can query is in the SDL a partner composes, and Member is
    the entity keyed by the partner's customer id, under a Federation 2 @link."""
    from graphql import build_ast_schema, parse

    served = graphql_schema()
    subgraph = SUBGRAPH_FILE.read_text(encoding="utf-8")
    assert subgraph.startswith('schema @link(url: "https://specs.apollo.dev/federation/v2.5", '
                               'import: ["@key"]) {\n')
    assert 'type Member @key(fields: "customerId") {\n' in subgraph
    assert subgraph.count("@key(") == 1
    # Parsed with the two federation directives declared (composition knows them already).
    declared = ('directive @link(url: String!, import: [String]) repeatable on SCHEMA\n'
                'directive @key(fields: String!) repeatable on OBJECT | INTERFACE\n')
    composed = build_ast_schema(parse(declared + subgraph))
    served_names = {name for name in served.type_map if not name.startswith("__")}
    assert served_names - set(composed.type_map) == FEDERATION_PLUMBING
    assert set(composed.type_map) - served_names == {
        name for name in composed.type_map if name.startswith("__")}
    assert served.query_type is not None and composed.query_type is not None
    assert set(served.query_type.fields) - set(composed.query_type.fields) == {
        "_entities", "_service"}


def test_every_mutation_returns_success_or_typed_errors() -> None:
    schema = graphql_schema()
    assert schema.mutation_type is not None
    error = schema.type_map["Error"]
    assert isinstance(error, GraphQLInterfaceType)
    assert set(error.fields) == {"code", "message", "field"}
    for name, field in schema.mutation_type.fields.items():
        expected = name[0].upper() + name[1:]
        assert isinstance(field.type, GraphQLNonNull), f"{name} may return null"
        union = field.type.of_type
        assert isinstance(union, GraphQLUnionType), f"{name} returns {union}, not a union"
        assert union.name == f"{expected}Result", name
        members = {member.name: member for member in union.types}
        assert f"{expected}Success" in members, f"{union.name} has no {expected}Success"
        not_errors = [member_name for member_name, member in members.items()
                      if member_name != f"{expected}Success" and error not in member.interfaces]
        assert not_errors == [], f"{union.name}: {not_errors} do not implement Error"


def test_every_union_admits_forbidden_and_invalid_input() -> None:
    unions = [t for t in graphql_schema().type_map.values()
              if isinstance(t, GraphQLUnionType) and t.name not in FEDERATION_PLUMBING]
    assert len(unions) >= 9  # the eight mutations and member(); a vacuous loop would pass
    for union in unions:
        names = {member.name for member in union.types}
        missing = {"ForbiddenError", "InvalidInputError"} - names
        assert not missing, f"{union.name} lacks {sorted(missing)}"


def test_error_code_field_is_the_enum_and_required() -> None:
    schema = graphql_schema()
    implementations = schema.get_possible_types(schema.type_map["Error"])  # type: ignore[arg-type]
    assert len(implementations) >= 17
    for type_ in implementations:
        code = type_.fields["code"].type
        assert is_non_null_type(code) and get_named_type(code).name == "ErrorCode", type_.name
        assert is_non_null_type(type_.fields["message"].type), type_.name


def test_every_connection_caps_first() -> None:
    cap = Limits().max_page_size
    assert cap == MAX_PAGE == 100
    found = {}
    for type_name, name, field in object_fields(graphql_schema()):
        if not is_connection(field.type):
            continue
        where = f"{type_name}.{name}"
        found[where] = field
        first = field.args.get("first")
        assert first is not None, f"{where} is a connection without `first`"
        assert get_named_type(first.type).name == "Int", where
        assert 1 <= first.default_value <= cap, f"{where}: default first {first.default_value}"
        assert "after" in field.args, f"{where} is a connection without `after`"
        assert f"at most {cap} per page" in (field.description or ""), (
            f"{where} must say 'at most {cap} per page' in its description")
    assert found, "no connection found: the detection is broken"
    assert set(found) == set(PROBED_CONNECTIONS), (
        f"connections {sorted(set(found) - set(PROBED_CONNECTIONS))} have no first: {cap + 1} "
        "probe; add one to tests/api/test_limits.py and to PROBED_CONNECTIONS")

