"""How the gateway keeps trusted documents and text parses (gateway.api.documents,
gateway.db.documents): one parse per document shared by every partner behind a partner check,
an LRU with a bound, unknown ids remembered for a bounded time, text requests keyed by their
text (never by hashing the syntax tree), and a race-safe registration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from graphql.language.ast import DocumentNode
from sqlalchemy import Engine, event, func, select

from gateway.api.documents import TrustedDocuments
from gateway.api.registering import register_documents
from gateway.app import Gateway, build
from gateway.core.clock import FixedClock
from gateway.core.ids import DocumentId, PartnerId
from gateway.db.documents import EVERY_PARTNER, document_id, save
from gateway.db.tables import trusted_documents
from tests.support.harness import NOW, partner_api, track
from tests.support.harness import test_settings as settings_for

QUERIES = [f"query Q{i} {{ __typename }}" for i in range(4)]
GROCERY, FUEL, AIRLINE = PartnerId("grocery"), PartnerId("fuel"), PartnerId("airline")


def gateway(tmp_path: Path) -> Gateway:
    gw = build(settings_for(tmp_path), clock=FixedClock(NOW))
    track(gw.services.engine)
    return gw


def put(gw: Gateway, partner: PartnerId, text: str) -> DocumentId:
    [done] = register_documents(gw.services, [(None, text)], partner, actor="test")
    return done.id


@contextmanager
def reads(engine: Engine) -> Iterator[list[str]]:
    """The statements that touch trusted_documents while the block runs."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "trusted_documents" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_one_parse_per_document_shared_by_its_partners(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    doc = put(gw, GROCERY, QUERIES[0])
    assert put(gw, FUEL, QUERIES[0]) == doc
    everyone = put(gw, EVERY_PARTNER, QUERIES[1])
    cache = TrustedDocuments(gw.services.engine, max_tokens=1000)

    grocery = await cache.find(GROCERY, doc)
    fuel = await cache.find(FUEL, doc)
    assert grocery is not None and fuel is grocery  # one parse, one validation cache
    assert grocery.owners == {GROCERY, FUEL}
    with reads(gw.services.engine) as seen:
        assert await cache.find(AIRLINE, doc) is None  # cached, yet not airline's
        assert len(seen) == 1  # the database was asked, and said no
        assert await cache.find(GROCERY, doc) is grocery
        assert len(seen) == 1
    shared = await cache.find(AIRLINE, everyone)
    assert shared is not None and await cache.find(None, everyone) is shared


async def test_found_documents_are_an_lru_with_a_bound(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    a, b, c = (put(gw, GROCERY, text) for text in QUERIES[:3])
    cache = TrustedDocuments(gw.services.engine, max_tokens=1000, max_cached=2)
    with reads(gw.services.engine) as seen:
        for doc in (a, b, a, c):  # c evicts b, the least recently used, and keeps a
            assert await cache.find(GROCERY, doc) is not None
        assert len(seen) == 3
        assert await cache.find(GROCERY, a) is not None
        assert await cache.find(GROCERY, c) is not None
        assert len(seen) == 3
        assert await cache.find(GROCERY, b) is not None
        assert len(seen) == 4


async def test_an_unknown_id_is_read_once_per_ttl_and_then_seen(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    clock = Clock()
    cache = TrustedDocuments(gw.services.engine, max_tokens=1000, missing_ttl=5.0,
                             monotonic=clock)
    late = document_id(QUERIES[0])
    with reads(gw.services.engine) as seen:
        for _ in range(3):
            assert await cache.find(GROCERY, late) is None
        assert len(seen) == 1  # one database read for three requests
        put(gw, GROCERY, QUERIES[0])
        seen.clear()
        clock.now += 4.9
        assert await cache.find(GROCERY, late) is None  # remembered as missing, for now
        assert seen == []
        clock.now += 0.2  # past the documented time: the registration is seen
        assert await cache.find(GROCERY, late) is not None
        assert len(seen) == 1


async def test_unknown_ids_remembered_are_bounded(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    cache = TrustedDocuments(gw.services.engine, max_tokens=1000, max_missing=2,
                             monotonic=Clock())
    a, b, c = (document_id(text) for text in QUERIES[:3])
    with reads(gw.services.engine) as seen:
        for doc in (a, b, c):  # c pushes a out
            assert await cache.find(GROCERY, doc) is None
        assert await cache.find(GROCERY, c) is None
        assert len(seen) == 3
        assert await cache.find(GROCERY, a) is None
        assert len(seen) == 4


async def test_a_text_request_does_not_hash_the_syntax_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    text = "query Member($id: ID!) { member(customerId: $id) { __typename } }"
    first = await grocery.post(text, {"id": "g-1"})
    assert first.status_code == 200, first.text
    hashed: list[DocumentNode] = []
    tree_hash = DocumentNode.__hash__

    def counting(node: DocumentNode) -> int:
        hashed.append(node)
        return tree_hash(node)

    monkeypatch.setattr(DocumentNode, "__hash__", counting)
    again = await grocery.post(text, {"id": "g-1"})
    assert again.json() == first.json()
    assert hashed == []


def test_registering_races_a_twin_and_both_succeed(tmp_path: Path) -> None:
    """Another process stores the same document between our check and our write: ours is
    then a no-op, not an IntegrityError (one INSERT ... ON CONFLICT DO NOTHING)."""
    gw = gateway(tmp_path)
    engine = gw.services.engine
    body = QUERIES[0]
    twins: list[str] = []

    def twin_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TRUSTED_DOCUMENTS") and not twins:
            twins.append(statement)
            save(engine, GROCERY, body, "Q0", at=NOW, actor="twin")

    event.listen(engine, "before_cursor_execute", twin_first)
    try:
        doc, created = save(engine, GROCERY, body, "Q0", at=NOW, actor="test")
    finally:
        event.remove(engine, "before_cursor_execute", twin_first)
    assert len(twins) == 1 and not created and doc.id == document_id(body)
    with engine.connect() as conn:
        rows = conn.execute(select(trusted_documents.c.registered_by)).scalars().all()
        assert rows == ["twin"]
        assert conn.execute(select(func.count()).select_from(trusted_documents)
                            ).scalar_one() == 1
    assert save(engine, FUEL, body, "Q0", at=NOW, actor="test")[1] is True  # another owner
