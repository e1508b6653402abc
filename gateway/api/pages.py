"""Page sizes are checked before anything executes.

Every connection takes ``first`` between 1 and the page cap (``Limits.max_page_size``, at most
``MAX_PAGE``). The resolvers check it too, but a nested connection's resolver runs *after* its
parent: ``enrolCustomer(...) { ... on EnrolCustomerSuccess { member { history(first: 190) ...``
enrolled the customer, then failed the nested field, and answered ``data: null`` for a
mutation that had committed (issue 9, found by schemathesis from outside). So the whole
operation is walked here, with its variables, once it has been validated and before it runs:
a request asking for a page out of range is refused whole and changes nothing, and an
accepted mutation always returns its answer.

Validation rules cannot do this (they are cached per document and never see the variables),
so this is an ``on_execute`` extension that short-circuits with a request error, code
``INVALID_INPUT`` and field ``first``, the same code and field the resolvers use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

MAX_PAGE = 100
PAGE_ARGUMENT = "first"


class CheckPageSizes(SchemaExtension):
    def __init__(self, *, page_cap: int) -> None:
        self.page_cap = min(MAX_PAGE, page_cap)

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            error = first_out_of_range(document.definitions, context.operation_name,
                                       context.variables or {}, self.page_cap)
            if error is not None:
                context.result = ExecutionResult(data=None, errors=[error])
        yield


def first_out_of_range(definitions: Any, operation_name: str | None,
                       variables: dict[str, Any], cap: int) -> GraphQLError | None:
    """The first ``first`` argument in the operation that is not an integer 1..cap."""
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next((o for o in operations
                   if operation_name is None or (o.name and o.name.value == operation_name)),
                  None)
    if chosen is None:
        return None  # graphql-core reports the missing operation
    defaults = {v.variable.name.value: v.default_value
                for v in chosen.variable_definitions or ()}
    for field in _fields(chosen.selection_set, fragments, set()):
        for argument in field.arguments or ():
            if argument.name.value != PAGE_ARGUMENT:
                continue
            value = _value(argument.value, variables, defaults)
            if value is not None and not (isinstance(value, int) and 1 <= value <= cap):
                return GraphQLError(
                    f"first must be between 1 and {cap}", nodes=[argument],
                    extensions={"code": "INVALID_INPUT", "field": PAGE_ARGUMENT})
    return None


def _fields(selections: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode],
            seen: set[str]) -> Iterator[FieldNode]:
    for selection in selections.selections if selections else ():
        if isinstance(selection, FieldNode):
            yield selection
            yield from _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:  # validation refused cycles already
                yield from _fields(fragments[name].selection_set, fragments, seen | {name})


def _value(node: Any, variables: dict[str, Any], defaults: dict[str, Any]) -> Any:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, VariableNode):
        name = node.name.value
        if name in variables:
            return variables[name]
        default = defaults.get(name)
        return _value(default, variables, {}) if default is not None else None
    return None  # other literals fail validation as the wrong type
