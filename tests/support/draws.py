"""Prize-draw test helpers: feed the committed events to the draws consumer (the worker does it
in production; it is not on this branch), and the draw of the worked example in docs/draws.md."""

from __future__ import annotations

from datetime import timedelta

from gateway.app import Gateway
from gateway.core.money import Money
from gateway.db.uow import UnitOfWork
from gateway.draws import CONSUMER
from gateway.draws.model import Draw, DrawTerms, Prize
from gateway.draws.service import create_draw
from gateway.outbox import Consumer, read_events


def drain(gw: Gateway, consumer: Consumer = CONSUMER) -> int:
    """Every committed event of the consumer's types, handled once, in id order; how many."""
    with UnitOfWork(gw.services.engine, write=False) as uow:
        found = read_events(uow.conn, limit=10_000, types=sorted(consumer.types))
    for event in found:
        consumer.handle(gw.services.engine, event)
    return len(found)


def grocery_terms(gw: Gateway, **changes: object) -> DrawTerms:
    """Kolos Grocery's draw: opens now, closes in 7 days; 2 entries per purchase of at least
    500.00 UAH, or 10 points an entry; 5 entries per member; a bike and 2 vouchers."""
    now = gw.services.clock.now()
    values: dict[str, object] = {
        "name": "Autumn bike draw", "opens_at": now, "closes_at": now + timedelta(days=7),
        "prizes": (Prize("Bike", 1), Prize("Voucher 500 UAH", 2)),
        "max_entries_per_member": 5, "entries_per_purchase": 2,
        "min_spend": Money(50_000, "UAH"), "points_per_entry": 10}
    values.update(changes)
    return DrawTerms(**values)  # type: ignore[arg-type]


def grocery_draw(gw: Gateway, **changes: object) -> Draw:
    return create_draw(gw.services.engine, gw.services.rules, gw.services.clock.now(),
                       "grocery", grocery_terms(gw, **changes), "test")
