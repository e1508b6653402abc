"""Micro-benchmark: what parsing and validating the earnPoints document costs per request, three
ways, on the served schema and rules (no HTTP, no database: the GraphQL front half only).

    .venv/bin/python -m benchmarks.documents [--rounds 20000]

* uncached: parse + validate every time (no cache at all);
* LRU caches: ``CachedDocuments`` for a text sent in full (what Strawberry's ``ParserCache`` +
  ``ValidationCache`` do): the text is hashed to find the parse, then the whole syntax tree is
  hashed (graphql-core nodes are frozen dataclasses, hashed field by field) to find the
  validation; each request brings a new string, so neither hash is remembered;
* trusted document: the request names a registered document; its parse and validation are
  held on the document, so a request costs two dictionary lookups."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from graphql import parse, specified_rules
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

    def lru() -> object:
        fresh = "".join(text)  # a new str per request, as a new request body brings
        fresh = fresh[:1] + fresh[1:]
        tree = documents._parse(fresh, tokens)
        return documents._validate(schema, tree, rules)

    prepared = documents.Prepared(DocumentId("x"), PartnerId("grocery"), text,
                                  parse(text, max_tokens=tokens))
    found = {(PartnerId("grocery"), DocumentId("x")): prepared}

    def trusted() -> object:
        doc = found[(PartnerId("grocery"), DocumentId("x"))]
        return doc.document, doc.validate(schema, rules)

    rows = [("uncached: parse + validate", _per_call_us(uncached, max(args.rounds // 20, 100))),
            ("LRU caches (text sent in full)", _per_call_us(lru, args.rounds)),
            ("trusted document (sent by id)", _per_call_us(trusted, args.rounds))]
    for label, us in rows:
        print(f"{label:34} {us:9.2f} µs per request")


if __name__ == "__main__":
    main()
