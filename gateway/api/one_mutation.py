"""One mutation per operation (issue 9, item 3; docs/decisions/009-one-mutation-per-operation.md).

Each root mutation field runs in its own write transaction, so a document with seventeen
mutation fields was seventeen writes that the per-client rate limit charged as one request.
Rather than charge per root field (the limit is taken at the HTTP door, before the document is
parsed), a mutation operation may select exactly one root field; a query may select many, as
reads are cheap and bounded by the other limits. The rule is a validation rule, so it runs
once per document (Strawberry's ValidationCache) and a refused document runs nothing."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
)


class OneMutationPerOperation(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        if node.operation != OperationType.MUTATION:
            return
        fields = self._root_fields(node.selection_set, set())
        if len(fields) > 1:
            names = ", ".join(f.alias.value if f.alias else f.name.value for f in fields)
            self.report_error(GraphQLError(
                f"a mutation operation may run one mutation, this one has {len(fields)} "
                f"({names}): send each in its own request (each is its own transaction and "
                "counts against the rate limit)",
                nodes=[node], extensions={"code": "INVALID_INPUT", "field": None}))

    def _root_fields(self, selections: SelectionSetNode, seen: set[str]) -> list[FieldNode]:
        found: list[FieldNode] = []
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value != "__typename":
                    found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                found += self._root_fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is not None and name not in seen:
                    found += self._root_fields(fragment.selection_set, seen | {name})
        return found
