"""Trusted documents (persisted operations): a partner's operations registered in advance, sent
by id, parsed and validated once (docs/trusted-documents.md).

A request names a registered document in either form clients send today:

* ``{"documentId": "sha256:<hex>", "variables": ...}`` (GraphQL over HTTP, trusted documents;
  the ``sha256:`` prefix is optional), or
* ``{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}, ...}`` (Apollo).

The id is the SHA-256 of the document's exact text. With ``GATEWAY_TRUSTED_DOCUMENTS=only`` a
request must name a registered document, or send a text whose SHA-256 is registered; anything
else is refused before it is parsed. Refusals are request errors (HTTP 400) with a stable code:

======================================  =======================================================
``PERSISTED_QUERY_NOT_FOUND``           no document with this id is registered for the caller
                                        (sent with its text too, the text runs in mode
                                        ``allow``: Apollo's automatic persisted queries)
``PERSISTED_QUERY_NOT_IN_LIST``         only registered documents run here (mode ``only``)
``PERSISTED_QUERY_HASH_MISMATCH``       a text and an id were sent, and they differ
======================================  =======================================================

A registered document is parsed once and validated once per schema and rule set
(``Prepared``): a request by id does no parsing, no validation and no hashing of the syntax
tree, where ``ParserCache`` + ``ValidationCache`` hash the text and then the whole tree on every
request (docs/benchmarks.md has the measured saving). The validation rules are the same ones,
so the one-mutation-per-operation rule, depth, alias and token limits hold for registered
documents as for any other; page sizes and rate limits are checked at run time, as always."""

from __future__ import annotations

import enum
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import anyio.to_thread
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from graphql.validation import ASTValidationRule
from sqlalchemy import Engine
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gateway.core.ids import DocumentId, PartnerId
from gateway.db import documents as store

# The key under which the view hands a registered document to the extension. Its value is a
# ``Prepared`` object, which no JSON body can forge.
TRUSTED = "gateway.trustedDocument"
_HEX = re.compile(r"[0-9a-f]{64}")
# How long an id not found is remembered per caller: the longest a document registered after
# a request named it waits to be seen (docs/trusted-documents.md).
MISSING_TTL_SECONDS = 5.0


class RefusalCode(enum.StrEnum):
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"


class DocumentRefused(Exception):
    """A request refused before any GraphQL work; the view answers 400 with ``code``."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidDocument(ValueError):
    """A document offered for registration that this schema would not run."""


@dataclass(eq=False)
class Parsed:
    """One document's parse, and its validation per (schema, rules), each done once."""

    document: DocumentNode
    _errors: dict[tuple[GraphQLSchema, tuple[type[ASTValidationRule], ...]],
                  list[GraphQLError]] = field(default_factory=dict)

    def validate(self, schema: GraphQLSchema,
                 rules: tuple[type[ASTValidationRule], ...]) -> list[GraphQLError]:
        key = (schema, rules)  # the schema and the rule tuple hash by identity: cheap
        found = self._errors.get(key)
        if found is None:
            found = self._errors[key] = validate_document(schema, self.document, rules)
        return found


@dataclass(eq=False, kw_only=True)
class Prepared(Parsed):
    """One registered document: its parse (shared by every partner that registered the same
    text) and the partners known to have registered it (``EVERY_PARTNER`` for all)."""

    id: DocumentId
    body: str
    owners: set[PartnerId] = field(default_factory=set)

    def allows(self, partner_id: PartnerId | None) -> bool:
        return store.EVERY_PARTNER in self.owners or (
            partner_id is not None and partner_id in self.owners)


def document_ref(extensions: Mapping[str, Any] | None) -> DocumentId | None:
    """The document id a request names (``documentId`` arrives here moved into
    ``extensions`` by the view), or None for a request carrying its text."""
    if not extensions:
        return None
    ref = extensions.get("documentId")
    if ref is None:
        persisted = extensions.get("persistedQuery")
        if isinstance(persisted, Mapping):
            ref = persisted.get("sha256Hash")
    if ref is None:
        return None
    text = ref.removeprefix("sha256:").lower() if isinstance(ref, str) else ""
    if not _HEX.fullmatch(text):
        raise DocumentRefused(RefusalCode.PERSISTED_QUERY_NOT_FOUND,
                              "a document id is the hex SHA-256 of the document's text "
                              "(64 characters, optionally prefixed 'sha256:')")
    return DocumentId(text)


class TrustedDocuments:
    """The registered documents as this process knows them, keyed by document id alone: the
    parse and validation of a text are shared by every partner that registered it, and a
    partner check on each request keeps one partner's documents from another.

    * Found: a document is immutable (its id is its hash), so it stays until evicted; an LRU
      of ``max_cached`` documents.
    * Not found: remembered per (partner, id) for ``missing_ttl`` seconds (an LRU of
      ``max_missing``), so a client repeating an unknown id costs no database read; a document
      registered after a miss is therefore seen within ``missing_ttl`` seconds (at once if
      never asked for before), on every worker."""

    def __init__(self, engine: Engine, *, max_tokens: int, max_cached: int = 10_000,
                 max_missing: int = 10_000, missing_ttl: float = MISSING_TTL_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.max_tokens = max_tokens
        self.max_cached = max_cached
        self.max_missing = max_missing
        self.missing_ttl = missing_ttl
        self.monotonic = monotonic
        self._found: OrderedDict[DocumentId, Prepared] = OrderedDict()
        self._missing: OrderedDict[tuple[PartnerId | None, DocumentId], float] = OrderedDict()

    async def find(self, partner_id: PartnerId | None, doc_id: DocumentId) -> Prepared | None:
        prepared = self._found.get(doc_id)
        if prepared is not None:
            self._found.move_to_end(doc_id)
            if prepared.allows(partner_id):
                return prepared
        miss = (partner_id, doc_id)
        expires = self._missing.get(miss)
        if expires is not None:
            if self.monotonic() < expires:
                return None
            del self._missing[miss]
        stored = await anyio.to_thread.run_sync(store.find, self.engine, partner_id, doc_id)
        if stored is None:
            self._missing[miss] = self.monotonic() + self.missing_ttl
            if len(self._missing) > self.max_missing:
                self._missing.popitem(last=False)
            return None
        prepared = self._found.get(doc_id)
        if prepared is None:
            prepared = Prepared(parse(stored.body, max_tokens=self.max_tokens),
                                id=stored.id, body=stored.body)
            self._found[doc_id] = prepared
            if len(self._found) > self.max_cached:
                self._found.popitem(last=False)
        prepared.owners.add(stored.partner_id)
        return prepared


def check_document(schema: GraphQLSchema, body: str, *, max_tokens: int,
                   rules: Sequence[type[ASTValidationRule]]) -> str | None:
    """Refuse (``InvalidDocument``) a text this schema would not run: a syntax error, more
    than one operation, or any validation error under the served rules. Returns the
    operation's name."""
    try:
        document = parse(body, max_tokens=max_tokens)
    except GraphQLError as error:
        raise InvalidDocument(f"not a GraphQL document: {error.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise InvalidDocument(f"a trusted document holds exactly one operation, this one has "
                              f"{len(operations)}")
    errors = validate_document(schema, document, (*specified_rules, *rules))
    if errors:
        raise InvalidDocument("; ".join(error.message for error in errors))
    name = operations[0].name
    return None if name is None else name.value


def read_manifest(text: str) -> list[tuple[str | None, str]]:
    """``(declared id, text)`` pairs from a persisted-query manifest: Apollo's
    (``{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}, ...]}``) or
    Relay's (``{"<id>": "<text>", ...}``). A file that is not JSON is one document's text."""
    try:
        data = json.loads(text)
    except ValueError:
        return [(None, text)]
    pairs: list[tuple[Any, Any]]
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        pairs = [(op.get("id"), op.get("body")) for op in data["operations"]
                 if isinstance(op, dict)]
    elif isinstance(data, dict):
        pairs = list(data.items())
    else:
        raise InvalidDocument("a manifest is a JSON object: Apollo's {\"operations\": [...]} "
                              "or Relay's {id: text}")
    for declared, body in pairs:
        if not isinstance(body, str) or not (declared is None or isinstance(declared, str)):
            raise InvalidDocument(f"manifest entry {declared!r}: the text must be a string")
    return [(declared, body) for declared, body in pairs]


@dataclass(frozen=True, slots=True)
class Registered:
    id: DocumentId
    name: str | None
    created: bool


def register(engine: Engine, schema: GraphQLSchema, documents: Sequence[tuple[str | None, str]],
             partner_id: PartnerId, *, max_tokens: int,
             rules: Sequence[type[ASTValidationRule]], at: datetime,
             actor: str) -> list[Registered]:
    """Check every document, then store them all (``InvalidDocument`` naming the first bad one,
    with nothing stored). A declared id must be the SHA-256 of the text: the id a client sends
    is the one stored, and anyone can recompute it."""
    if partner_id != store.EVERY_PARTNER and not store.partner_exists(engine, partner_id):
        raise InvalidDocument(f"no partner {partner_id!r}")
    checked: list[tuple[str, str | None]] = []
    for declared, body in documents:
        where = f"document {declared}" if declared else "the document"
        actual = store.document_id(body)
        if declared is not None and declared.removeprefix("sha256:").lower() != actual:
            raise InvalidDocument(f"{where}: its id is not the SHA-256 of its text ({actual})")
        try:
            name = check_document(schema, body, max_tokens=max_tokens, rules=rules)
        except InvalidDocument as exc:
            raise InvalidDocument(f"{where}: {exc}") from None
        checked.append((body, name))
    saved = [store.save(engine, partner_id, body, name, at=at, actor=actor)
             for body, name in checked]
    return [Registered(doc.id, doc.name, created) for doc, created in saved]


@lru_cache(maxsize=1024)
def _parsed(query: str, max_tokens: int | None) -> Parsed:
    """A text's parse and validations, keyed by the text: the key hashes one string (Python
    keeps a string's hash), never the syntax tree, which hashes every node."""
    return Parsed(parse(query, max_tokens=max_tokens))


class CachedDocuments(SchemaExtension):
    """Parsing and validation, each done once per document: a registered document's own
    parse and validation (``Prepared``), else an LRU cache of both keyed by the text, where
    Strawberry's ``ParserCache`` and ``ValidationCache`` key the validation by the tree (this
    extension replaces the two)."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        parsed = self._parsed()
        if parsed is not None:
            ec.graphql_document = parsed.document
        yield

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        parsed = self._parsed()
        if parsed is not None and ec.graphql_document is parsed.document:
            ec.pre_execution_errors = parsed.validate(ec.schema._schema, ec.validation_rules)
        elif ec.graphql_document is not None:  # not ours: validate as Strawberry would
            ec.pre_execution_errors = validate_document(ec.schema._schema,
                                                        ec.graphql_document,
                                                        ec.validation_rules)
        yield

    def _parsed(self) -> Parsed | None:
        ec = self.execution_context
        prepared = _prepared(ec.operation_extensions)
        if prepared is not None:
            return prepared
        if ec.query is None:
            return None
        return _parsed(ec.query, ec.parse_options.get("max_tokens"))


def _prepared(extensions: Mapping[str, Any] | None) -> Prepared | None:
    if not extensions:
        return None
    found = extensions.get(TRUSTED)
    return found if isinstance(found, Prepared) else None
