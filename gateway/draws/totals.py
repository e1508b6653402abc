"""A draw's totals (entries, entrants) as one row per draw, ``draw_totals``.

The partner's draw list and ``draw`` query used to sum every entry row of each listed draw on
each request: a page of 100 draws with 10^5 entries each read 10^7 rows. Every write of
``draw_entries`` now moves the draw's row in the same transaction (:func:`add`, given the
member's entries before the write, read under the member's lock), and the close sets it to the
frozen list's figures (:func:`freeze`: merged accounts counted as their survivor, capped), after
which nothing writes entries. A view reads it by primary key (:data:`ENTRIES`, joined to the
draw). Decision 033."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.dialects import postgresql, sqlite

from gateway.db.tables import draw_totals

ENTRIES = func.coalesce(draw_totals.c.entries, 0).label("total_entries")
ENTRANTS = func.coalesce(draw_totals.c.entrants, 0).label("total_entrants")


def _insert(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(draw_totals)


def moved(before: int, entries: int) -> tuple[int, int]:
    """What a row of ``entries`` does to the totals for a member who held ``before``: the
    entries the member holds (never below 0) and whether the member is an entrant."""
    after = before + entries
    return max(after, 0) - max(before, 0), int(after > 0) - int(before > 0)


def add(conn: Connection, draw_id: str, *, before: int, entries: int) -> None:
    """Move the draw's totals by one new ``draw_entries`` row (primary key upsert)."""
    d_entries, d_entrants = moved(before, entries)
    if d_entries == 0 and d_entrants == 0:
        return
    statement = _insert(conn).values(draw_id=draw_id, entries=d_entries, entrants=d_entrants)
    conn.execute(statement.on_conflict_do_update(index_elements=["draw_id"], set_={
        "entries": draw_totals.c.entries + d_entries,
        "entrants": draw_totals.c.entrants + d_entrants}))


def freeze(conn: Connection, draw_id: str, *, entries: int, entrants: int) -> None:
    """The close's figures: the frozen list's, for good."""
    statement = _insert(conn).values(draw_id=draw_id, entries=entries, entrants=entrants)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["draw_id"], set_={"entries": entries, "entrants": entrants}))
