"""Registering trusted documents against the schema this gateway serves: the one call the
CLI (``gateway documents register``), the benchmarks and the tests make, so that a document is
always checked against the same schema, token limit and validation rules that will run it.
(``gateway.api.documents`` cannot build the schema itself: the schema imports it.)"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.api.context import Services
from gateway.api.documents import Registered, register
from gateway.api.schema import build_schema, validation_rules
from gateway.core.ids import PartnerId


def register_documents(services: Services, documents: Sequence[tuple[str | None, str]],
                       partner_id: PartnerId, *, actor: str) -> list[Registered]:
    """Check ``(declared id, text)`` pairs and store them for ``partner_id``
    (``gateway.api.documents.register``: all or nothing, ``InvalidDocument`` if one is bad)."""
    settings = services.settings
    return register(services.engine, build_schema(settings)._schema, documents, partner_id,
                    max_tokens=settings.limits.max_tokens,
                    rules=validation_rules(settings.limits), at=services.clock.now(),
                    actor=actor)
