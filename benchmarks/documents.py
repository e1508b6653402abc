"""Micro-benchmark: what parsing and validating the earnPoints document costs per request, four
ways, on the served schema and rules (no HTTP, no database: the GraphQL front half only).

    .venv/bin/python -m benchmarks.documents [--rounds 20000]

* uncached: parse + validate every time (no cache at all);
* validation LRU keyed by the tree: what Strawberry's ``ValidationCache`` (and this gateway's
  cache until the trusted-documents review) does: the whole syntax tree is hashed per request
  (graphql-core nodes are frozen dataclasses, hashed field by field) to find the validation;
* LRU keyed by text: ``CachedDocuments`` for a text sent in full: the text alone is hashed
  (a new string per request, as a request body brings) to find its parse and validation;
* trusted document: the request names a registered document; its parse and validation are
  held on the document, so a request costs two dictionary lookups."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules
from graphql.validation import ASTValidationRule
from strawberry.schema.schema import validate_document

from benchmarks.earn import BODY
from gateway.api import documents
from gateway.api.schema import build_schema, validation_rules
from gateway.core.ids import DocumentId, PartnerId
from gateway.settings import Settings


def _per_call_us(fn: Callable[[], object], rounds: int) -> float:
    for _ in range(min(rounds, 200)):
        fn()
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    settings = Settings()
    schema = build_schema(settings)._schema
    rules = (*specified_rules, *validation_rules(settings.limits))
    text: str = json.loads(BODY.replace("@CUSTOMER@", "c").replace("@KEY@", "k"))["query"]
    tokens = settings.limits.max_tokens

    def uncached() -> object:
        return validate_document(schema, parse(text, max_tokens=tokens), rules)

    @lru_cache(maxsize=1024)
    def by_tree(schema: GraphQLSchema, tree: DocumentNode,
                rules: tuple[type[ASTValidationRule], ...]) -> list[GraphQLError]:
        return validate_document(schema, tree, rules)

    tree = parse(text, max_tokens=tokens)

    def lru_by_tree() -> object:  # what the validation cache was: keyed by the syntax tree
        return by_tree(schema, tree, rules)

    def lru() -> object:
        fresh = "".join(text)  # a new str per request, as a new request body brings
        fresh = fresh[:1] + fresh[1:]
        parsed = documents._parsed(fresh, tokens)
        return parsed.document, parsed.validate(schema, rules)

    prepared = documents.Prepared(parse(text, max_tokens=tokens), id=DocumentId("x"),
                                  body=text, owners={PartnerId("grocery")})
    found = {DocumentId("x"): prepared}

    def trusted() -> object:
        doc = found[DocumentId("x")]
        assert doc.allows(PartnerId("grocery"))
        return doc.document, doc.validate(schema, rules)

    rows = [("uncached: parse + validate", _per_call_us(uncached, max(args.rounds // 20, 100))),
            ("validation LRU keyed by the tree", _per_call_us(lru_by_tree, args.rounds)),
            ("LRU keyed by text (text sent)", _per_call_us(lru, args.rounds)),
            ("trusted document (sent by id)", _per_call_us(trusted, args.rounds))]
    for label, us in rows:
        print(f"{label:34} {us:9.2f} µs per request")


if __name__ == "__main__":
    main()
