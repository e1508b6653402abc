"""Prize draws (issue 13, decision 033, docs/draws.md): verifiably fair draws owned by a partner
or the coalition. Entries come from qualifying purchases (the ``points.earned`` and
``points.returned`` events, :data:`CONSUMER`) or are bought with points (a member command that
spends through the ledger and settles to the owner); the winners are drawn at close from a
seed committed to at creation (:mod:`gateway.draws.fairness`), and everything needed to check
them is published (``GET /draws/<id>/proof``, GraphQL, ``gateway draws verify``).

Modules: ``fairness`` (the pure algorithm), ``model`` (terms and their checks), ``service``
(create, list, close, proof), ``entries`` (the consumer and ``enter_draw``), ``cli``."""

from __future__ import annotations

from gateway.draws.entries import CONSUMER

__all__ = ["CONSUMER"]
