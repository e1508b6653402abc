"""Create, read, close and publish prize draws (decision 033). One transaction each.

Creating a draw generates its secret seed (``secrets.token_bytes(32)``) and a per-draw entrant
key, and stores ``commitment = SHA-256(seed)``: the commitment is public from then on, before
``opens_at``. Closing (at or after ``closes_at``, by the CLI or the owner's ``closeDraw``) locks
the draw row, freezes the entry list (each member's entries summed, merged accounts counted as
their survivor, capped at the per-member limit), stores it with its hash and the winners drawn
by :mod:`gateway.draws.fairness`, reveals the seed and emits ``draw.closed``. After that nothing
about the draw changes: late events and returns are ignored (``gateway.draws.entries``)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from gateway.core.errors import DrawStillOpen, InvalidInput, NotFound
from gateway.core.ids import new_id
from gateway.core.money import Money
from gateway.db.retry import retrying
from gateway.db.tables import (
    draw_entrants,
    draw_entries,
    draw_totals,
    draw_winners,
    draws,
    members,
)
from gateway.db.uow import UnitOfWork
from gateway.draws import fairness, totals
from gateway.draws.model import Draw, DrawTerms, Prize, check_terms
from gateway.ledger.context import RuleSource
from gateway.members.repository import MemberRepository
from gateway.outbox import emit

EVERY = "*"  # the coalition operator's view: every draw (no partner id is "*")
MAX_LIST = 100
# Draws taking entries per owner (a partner, or the coalition). The draws consumer reads every
# draw taking entries for every earn and return (ix_draws_status: open, closes_at ahead): this
# keeps that per-event work bounded by the partners' number, not by how many draws one partner
# creates. A draw counts until its close time.
MAX_OPEN_PER_OWNER = 50


@dataclass(frozen=True, slots=True)
class DrawSummary:
    draw: Draw
    entries: int
    entrants: int


def create_draw(engine: Engine, rules: RuleSource, now: datetime, owner: str | None,
                terms: DrawTerms, actor: str) -> Draw:
    checked = check_terms(terms, owner, rules, now)
    seed, key = fairness.new_seed(), fairness.new_seed()
    draw_id = new_id("drw")
    with UnitOfWork(engine) as uow:
        owned = draws.c.owner_partner_id == owner if owner is not None \
            else draws.c.owner_partner_id.is_(None)
        running = uow.conn.execute(select(func.count()).select_from(draws).where(  # ix_draws_status
            draws.c.status == "open", draws.c.closes_at > now, owned)).scalar_one()
        if running >= MAX_OPEN_PER_OWNER:
            raise InvalidInput(f"{MAX_OPEN_PER_OWNER} of your draws take entries already: create "
                               "this one when one of them has closed", field="opensAt")
        uow.conn.execute(insert(draws), {
            "id": draw_id, "owner_partner_id": owner, "name": checked.name,
            "opens_at": checked.opens_at, "closes_at": checked.closes_at,
            "purchase_partners": None if checked.entries_per_purchase is None
            else json.dumps(list(checked.purchase_partners)),
            "min_spend_minor": checked.min_spend.amount_minor if checked.min_spend else None,
            "min_spend_currency": checked.min_spend.currency if checked.min_spend else None,
            "entries_per_purchase": checked.entries_per_purchase,
            "points_per_entry": checked.points_per_entry,
            "max_entries_per_member": checked.max_entries_per_member,
            "one_prize_per_member": int(checked.one_prize_per_member),
            "prizes": json.dumps([{"name": p.name, "quantity": p.quantity}
                                  for p in checked.prizes]),
            "seed": seed.hex(), "commitment": fairness.commitment(seed),
            "entrant_key": key.hex(), "status": "open", "entry_list_hash": None,
            "closed_at": None, "created_at": now, "created_by": actor})
        uow.conn.execute(insert(draw_totals), {"draw_id": draw_id, "entries": 0, "entrants": 0})
        found = draw_of(uow.conn, draw_id, EVERY)
        uow.commit()
    return found


_COLUMNS = [c for c in draws.c if c.name not in ("entrant_key",)]
_BY_ID = select(*_COLUMNS).where(draws.c.id == bindparam("draw_id"))  # primary key


def to_draw(row: Any) -> Draw:
    partners = None if row.purchase_partners is None else tuple(json.loads(row.purchase_partners))
    spend = None if row.min_spend_minor is None else Money(int(row.min_spend_minor),
                                                           str(row.min_spend_currency))
    return Draw(
        id=row.id, owner_partner_id=row.owner_partner_id, name=row.name, opens_at=row.opens_at,
        closes_at=row.closes_at,
        prizes=tuple(Prize(p["name"], int(p["quantity"])) for p in json.loads(row.prizes)),
        max_entries_per_member=int(row.max_entries_per_member),
        entries_per_purchase=row.entries_per_purchase, purchase_partners=partners,
        min_spend=spend, points_per_entry=None if row.points_per_entry is None
        else int(row.points_per_entry), one_prize_per_member=bool(row.one_prize_per_member),
        commitment=row.commitment, status=row.status,
        seed=row.seed if row.status == "closed" else None,
        entry_list_hash=row.entry_list_hash, closed_at=row.closed_at, created_at=row.created_at)


def draw_of(conn: Connection, draw_id: str, owner: str | None) -> Draw:
    """The draw, if ``owner`` may see it (EVERY: any; a partner id: its own); another
    partner's draw is NOT_FOUND, like a missing one."""
    row = conn.execute(_BY_ID, {"draw_id": draw_id}).first()
    if row is None or (owner != EVERY and row.owner_partner_id != owner):
        raise NotFound(f"no draw {draw_id!r}", field="drawId")
    return to_draw(row)


# Each draw with its totals row, joined by primary key (decision 033: never its entry rows).
_WITH_TOTALS = (select(*_COLUMNS, totals.ENTRIES, totals.ENTRANTS)
                .select_from(draws.outerjoin(draw_totals, draw_totals.c.draw_id == draws.c.id)))


def _summary(row: Any) -> DrawSummary:
    return DrawSummary(to_draw(row), int(row.total_entries), int(row.total_entrants))


def show_draw(engine: Engine, draw_id: str, owner: str | None) -> DrawSummary:
    with UnitOfWork(engine, write=False) as uow:
        found = draw_of(uow.conn, draw_id, owner)
        row = uow.conn.execute(_WITH_TOTALS.where(draws.c.id == found.id)).one()  # primary keys
        return _summary(row)


def list_draws(engine: Engine, owner: str | None, limit: int = MAX_LIST) -> list[DrawSummary]:
    """The owner's draws, newest first, at most ``limit`` (ix_draws_owner), each with its
    totals row (primary key)."""
    stmt = _WITH_TOTALS.order_by(draws.c.id.desc()).limit(min(limit, MAX_LIST))
    if owner != EVERY:
        stmt = stmt.where(draws.c.owner_partner_id == owner if owner is not None
                          else draws.c.owner_partner_id.is_(None))
    with UnitOfWork(engine, write=False) as uow:
        return [_summary(r) for r in uow.conn.execute(stmt).all()]


# --- close ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Closed:
    draw: Draw
    entrants: tuple[fairness.Entrant, ...]
    winners: tuple[fairness.Win, ...]


def close_draw(engine: Engine, now: datetime, draw_id: str, owner: str | None) -> Closed:
    """Close the draw (once; closing a closed draw answers its stored result)."""
    def once() -> Closed:
        with UnitOfWork(engine) as uow:
            conn = uow.conn
            lock = _BY_ID.with_for_update() if conn.dialect.name == "postgresql" else _BY_ID
            row = conn.execute(lock, {"draw_id": draw_id}).first()
            if row is None or (owner != EVERY and row.owner_partner_id != owner):
                raise NotFound(f"no draw {draw_id!r}", field="drawId")
            if row.status == "closed":
                return _stored(conn, to_draw(row))
            if now < row.closes_at:
                raise DrawStillOpen(f"the draw takes entries until {row.closes_at.isoformat()}",
                                    field="drawId")
            key = bytes.fromhex(conn.execute(select(draws.c.entrant_key).where(
                draws.c.id == draw_id)).scalar_one())
            members = _frozen(conn, draw_id, int(row.max_entries_per_member))
            listed = {fairness.entrant_id(key, m): (m, n) for m, n in members.items()}
            entrants = tuple(sorted((fairness.Entrant(e, n) for e, (_, n) in listed.items()),
                                    key=lambda e: e.entrant))
            found = to_draw(row)
            wins = fairness.pick_winners(
                bytes.fromhex(row.seed), entrants, [(p.name, p.quantity) for p in found.prizes],
                one_prize_per_member=found.one_prize_per_member)
            if entrants:
                conn.execute(insert(draw_entrants), [
                    {"draw_id": draw_id, "entrant": e.entrant, "member_id": listed[e.entrant][0],
                     "entries": e.entries} for e in entrants])
            if wins:
                conn.execute(insert(draw_winners), [
                    {"draw_id": draw_id, "position": w.position, "prize": w.prize,
                     "entrant": w.entrant, "member_id": listed[w.entrant][0], "ticket": w.ticket}
                    for w in wins])
            list_hash = fairness.entry_list_hash(entrants)
            totals.freeze(conn, draw_id, entries=sum(e.entries for e in entrants),
                          entrants=len(entrants))
            conn.execute(update(draws).where(draws.c.id == draw_id).values(
                status="closed", entry_list_hash=list_hash, closed_at=now))
            emit(conn, "draw.closed", partner_id=row.owner_partner_id, member_id=None, at=now,
                 data={"draw_id": draw_id, "entries": sum(e.entries for e in entrants),
                       "entrants": len(entrants), "winners": len(wins),
                       "entry_list_hash": list_hash})
            closed = draw_of(conn, draw_id, EVERY)
            uow.commit()
            return Closed(closed, entrants, tuple(wins))

    return retrying(once)


# One pass over the draw's rows (ix_draw_entries_draw), each member's merge joined in by its
# primary key: survivors are looked up only for the few merged members, not one query each.
_HELD_WITH_MERGES = (
    select(draw_entries.c.member_id, members.c.merged_into, func.sum(draw_entries.c.entries))
    .select_from(draw_entries.join(members, members.c.id == draw_entries.c.member_id))
    .where(draw_entries.c.draw_id == bindparam("draw_id"))
    .group_by(draw_entries.c.member_id, members.c.merged_into))


def _frozen(conn: Connection, draw_id: str, cap: int) -> dict[str, int]:
    """Each member's entries: merged accounts count as their survivor, capped at ``cap``."""
    repo = MemberRepository(conn)
    summed: dict[str, int] = defaultdict(int)
    for member_id, merged_into, held in conn.execute(_HELD_WITH_MERGES, {"draw_id": draw_id}):
        owner = str(member_id) if merged_into is None else repo.survivor_of(str(member_id))
        summed[owner] += int(held)
    return {m: min(n, cap) for m, n in summed.items() if n > 0}


def _stored(conn: Connection, draw: Draw) -> Closed:
    """The frozen list and the winners: every entrant of the draw (the proof and the close's
    answer only; a view that needs the winners reads :func:`_winners`)."""
    entrants = tuple(fairness.Entrant(r.entrant, int(r.entries)) for r in conn.execute(
        select(draw_entrants.c.entrant, draw_entrants.c.entries)
        .where(draw_entrants.c.draw_id == draw.id).order_by(draw_entrants.c.entrant)))
    return Closed(draw, entrants, _winners(conn, draw.id))


def _winners(conn: Connection, draw_id: str) -> tuple[fairness.Win, ...]:
    """The draw's winners (at most MAX_SLOTS rows of the primary key (draw_id, position))."""
    return tuple(fairness.Win(int(r.position), r.prize, r.entrant, int(r.ticket))
                 for r in conn.execute(
                     select(draw_winners.c.position, draw_winners.c.prize,
                            draw_winners.c.entrant, draw_winners.c.ticket)
                     .where(draw_winners.c.draw_id == draw_id)
                     .order_by(draw_winners.c.position)))


def closed_result(engine: Engine, draw_id: str, owner: str | None) -> Closed:
    with UnitOfWork(engine, write=False) as uow:
        return _stored(uow.conn, draw_of(uow.conn, draw_id, owner))


def winners_of(engine: Engine, draw_id: str, owner: str | None) -> tuple[fairness.Win, ...]:
    """The winners of ``owner``'s draw (empty before the close), without its entry list."""
    with UnitOfWork(engine, write=False) as uow:
        return _winners(uow.conn, draw_of(uow.conn, draw_id, owner).id)


# --- the public proof -----------------------------------------------------------------------------
def proof(engine: Engine, draw_id: str) -> dict[str, Any]:
    """Everything anyone needs to check the draw (GET /draws/<id>/proof): before close the
    terms and the commitment; after, also the seed, the entry list, its hash and the winners."""
    with UnitOfWork(engine, write=False) as uow:
        found = draw_of(uow.conn, draw_id, EVERY)
        closed = _stored(uow.conn, found) if found.status == "closed" else None
    return proof_document(found, closed)


def proof_document(found: Draw, closed: Closed | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "draw_id": found.id, "name": found.name, "owner": found.owner_partner_id or "coalition",
        "algorithm": fairness.ALGORITHM, "opens_at": found.opens_at.isoformat(),
        "closes_at": found.closes_at.isoformat(), "status": found.status,
        "one_prize_per_member": found.one_prize_per_member,
        "prizes": [{"name": p.name, "quantity": p.quantity} for p in found.prizes],
        "commitment": found.commitment,
    }
    if closed is not None:
        body.update({
            "closed_at": None if found.closed_at is None else found.closed_at.isoformat(),
            "seed": found.seed, "entry_list_hash": found.entry_list_hash,
            "entries": [{"entrant": e.entrant, "entries": e.entries} for e in closed.entrants],
            "winners": [{"position": w.position, "prize": w.prize, "entrant": w.entrant,
                         "ticket": w.ticket} for w in closed.winners],
        })
    return body


def verify_document(body: dict[str, Any]) -> list[str]:
    """What is wrong with a published proof (empty: it verifies); a draw not closed yet has
    nothing to verify but its shape."""
    if body.get("status") != "closed":
        return ["the draw is not closed: there is no seed or entry list to check yet"]
    try:
        entrants = [fairness.Entrant(str(e["entrant"]), int(e["entries"]))
                    for e in body["entries"]]
        prizes = [(str(p["name"]), int(p["quantity"])) for p in body["prizes"]]
        winners = [(str(w["prize"]), str(w["entrant"])) for w in body["winners"]]
        return fairness.check(str(body["seed"]), str(body["commitment"]),
                              str(body["entry_list_hash"]), entrants, prizes, winners,
                              one_prize_per_member=bool(body["one_prize_per_member"]))
    except (KeyError, TypeError, ValueError) as error:
        return [f"the proof is malformed: {error!r}"]


# --- the member's view ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberDraw:
    draw: Draw
    entries: int  # the member's entries now (frozen at close)
    entrant: str  # the member's pseudonym in this draw's published list
    winners: tuple[fairness.Win, ...]  # empty until closed
    won: tuple[str, ...]  # the prizes the member won


# ix_draws_status (status, closes_at): the open draws, soonest to close first, at most MAX_LIST.
_OPEN_NOW = (select(*_COLUMNS, draws.c.entrant_key)
             .where(draws.c.status == "open", draws.c.closes_at > bindparam("now"),
                    draws.c.opens_at <= bindparam("now"))
             .order_by(draws.c.closes_at, draws.c.id).limit(MAX_LIST))
# ix_draw_entries_member (member_id, draw_id): the draws the member has rows in.
_ENTERED = (select(draw_entries.c.draw_id).where(draw_entries.c.member_id == bindparam("member"))
            .group_by(draw_entries.c.draw_id).order_by(draw_entries.c.draw_id.desc())
            .limit(MAX_LIST))
_WITH_KEY = select(*_COLUMNS, draws.c.entrant_key).where(  # primary key
    draws.c.id == bindparam("draw_id"))
_FROZEN = select(draw_entrants.c.entries).where(  # primary key
    draw_entrants.c.draw_id == bindparam("draw_id"), draw_entrants.c.entrant == bindparam("e"))
_MEMBER_HELD = select(func.coalesce(func.sum(draw_entries.c.entries), 0)).where(
    draw_entries.c.member_id == bindparam("member"),  # ix_draw_entries_member
    draw_entries.c.draw_id == bindparam("draw_id"))


def member_draws(engine: Engine, member_id: str, now: datetime) -> list[MemberDraw]:
    """The draws open now and the draws the member entered (each list at most MAX_LIST),
    with the member's entries, pseudonym and, once closed, the winners and what they won."""
    with UnitOfWork(engine, write=False) as uow:
        conn = uow.conn
        rows = {r.id: r for r in conn.execute(_OPEN_NOW, {"now": now}).all()}
        for draw_id in conn.execute(_ENTERED, {"member": member_id}).scalars():
            if draw_id not in rows:
                rows[draw_id] = conn.execute(_WITH_KEY, {"draw_id": draw_id}).one()
        return [_member_view(conn, r, member_id) for r in rows.values()]


def _member_view(conn: Connection, row: Any, member_id: str) -> MemberDraw:
    found = to_draw(row)
    entrant = fairness.entrant_id(bytes.fromhex(row.entrant_key), member_id)
    if found.status != "closed":
        entries = int(conn.execute(_MEMBER_HELD, {"member": member_id,
                                                  "draw_id": found.id}).scalar_one())
        return MemberDraw(found, min(max(entries, 0), found.max_entries_per_member), entrant,
                          (), ())
    frozen = conn.execute(_FROZEN, {"draw_id": found.id, "e": entrant}).scalar_one_or_none()
    winners = _winners(conn, found.id)  # not the whole entry list: a draw may have 10^5
    won = tuple(w.prize for w in winners if w.entrant == entrant)
    return MemberDraw(found, int(frozen or 0), entrant, winners, won)
