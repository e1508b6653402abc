"""Challenges in tests: feed the committed outbox events to the real consumer (what the worker
does at merge), and small helpers to define challenges and read their state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from gateway.app import Gateway
from gateway.challenges import consumer
from gateway.challenges import service as challenges
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.outbox import Event, read_events


class Drain:
    """Hands each new event to the challenges' consumer, in order, once; ``replay`` hands every
    event again from the start (a worker that lost its deliveries' state)."""

    def __init__(self, gw: Gateway, clock: FixedClock) -> None:
        self.engine: Engine = gw.services.engine
        self.consumer = consumer(clock)
        self.cursor = ""
        self.handled = 0

    def __call__(self) -> list[Event]:
        events = self._from(self.cursor)
        if events:
            self.cursor = events[-1].id
        return events

    def replay(self) -> list[Event]:
        return self._from("")

    def _from(self, after: str) -> list[Event]:
        with self.engine.connect() as conn:
            events = read_events(conn, after=after, limit=10_000)
        for event in events:
            if event.type in self.consumer.types:
                self.consumer.handle(self.engine, event)
                self.handled += 1
        return events


def define(gw: Gateway, owner: str = "coalition", **raw: Any) -> str:
    raw.setdefault("starts_at", "2026-01-01T00:00:00Z")
    return challenges.define(gw.services.engine, raw, owner=owner, actor="test",
                             now=gw.services.clock.now()).id


def window_rows(gw: Gateway, challenge_id: str, member_id: str) -> list[dict[str, Any]]:
    w = t.challenge_windows.c
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.challenge_windows).where(
            w.challenge_id == challenge_id, w.member_id == member_id).order_by(w.starts_at))
        return [dict(r._mapping) for r in rows]


def bonus_operations(gw: Gateway, member_id: str) -> list[dict[str, Any]]:
    o = t.operations.c
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(o.id, o.kind, o.points, o.partner_id, o.parent_id,
                                   o.rule_partner_id, o.rule_version, o.idempotency_key)
                            .where(o.member_id == member_id,
                                   o.idempotency_key.like("challenge%"))
                            .order_by(o.recorded_at, o.id))
        return [dict(r._mapping) for r in rows]


def awards(gw: Gateway, campaign_id: str) -> list[tuple[str, int, int]]:
    a = t.promotion_awards.c
    with gw.services.engine.connect() as conn:
        return [(r.funder, int(r.points), int(r.rewards)) for r in conn.execute(
            select(a.funder, a.points, a.rewards).where(a.campaign_id == campaign_id)
            .order_by(a.id))]


def count(gw: Gateway, table: Any) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
