"""Storage of trusted GraphQL documents: what a partner registered, by the SHA-256 of its text.

A document's id is the hex SHA-256 of its exact text, so a stored row never changes and the
same text registered twice is one row (registering again is a no-op, not an error). A row is
bound to one partner, or to ``EVERY_PARTNER`` (""), which any caller may send: the coalition's
own apps. Checking that a text is a valid operation is the GraphQL layer's work
(``gateway.api.documents``); this module only stores and finds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.ids import DocumentId, PartnerId
from gateway.db.tables import partners
from gateway.db.tables import trusted_documents as t

EVERY_PARTNER = PartnerId("")


def document_id(body: str) -> DocumentId:
    return DocumentId(hashlib.sha256(body.encode("utf-8")).hexdigest())


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: DocumentId
    partner_id: PartnerId
    name: str | None
    body: str


def save(engine: Engine, partner_id: PartnerId, body: str, name: str | None, *,
         at: datetime, actor: str) -> tuple[StoredDocument, bool]:
    """Store ``body`` for ``partner_id``; ``(document, created)``, created False when it was
    stored already. One ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key: two
    registrations of the same text racing (two CLIs, two workers) both succeed, one creates."""
    doc = StoredDocument(document_id(body), partner_id, name, body)
    values = {"id": doc.id, "partner_id": partner_id, "name": name, "body": body,
              "registered_at": at, "registered_by": actor}
    keys = [t.c.id, t.c.partner_id]
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(t).values(**values).on_conflict_do_nothing(index_elements=keys)
                 .returning(t.c.id))  # a row back only when this statement stored it
    with engine.begin() as conn:
        created = conn.execute(statement).first() is not None
    return doc, created


def partner_exists(engine: Engine, partner_id: PartnerId) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(partners.c.id).where(partners.c.id == partner_id)
                            ).first() is not None


def find(engine: Engine, partner_id: PartnerId | None,
         doc_id: DocumentId) -> StoredDocument | None:
    """The document ``doc_id`` as ``partner_id`` may send it: its own, else one registered for
    every partner. Another partner's document looks exactly like a missing one."""
    partners = [EVERY_PARTNER] if partner_id is None else [partner_id, EVERY_PARTNER]
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.id, t.c.partner_id, t.c.name, t.c.body).where(
            t.c.id == doc_id, t.c.partner_id.in_(partners))).all()
    if not rows:
        return None
    row = min(rows, key=lambda r: r.partner_id == EVERY_PARTNER)  # the partner's own first
    return StoredDocument(DocumentId(row.id), PartnerId(row.partner_id), row.name, row.body)


def listed(engine: Engine, partner_id: PartnerId | None = None) -> list[StoredDocument]:
    query = select(t.c.id, t.c.partner_id, t.c.name, t.c.body).order_by(t.c.partner_id, t.c.id)
    if partner_id is not None:
        query = query.where(t.c.partner_id == partner_id)
    with engine.connect() as conn:
        return [StoredDocument(DocumentId(r.id), PartnerId(r.partner_id), r.name, r.body)
                for r in conn.execute(query)]
