"""The challenges' event consumer: progress from ``points.earned`` and ``points.returned``.

Per event, one transaction (the ledger's ``transact``): the member locked (the lock every write
on the member takes, so two events of one member never race), then for each challenge the event
concerns: append its progress row (UNIQUE (event_id, challenge_id): a replayed event appends
nothing and changes nothing), recompute the window from that window's rows only
(``ix_challenge_progress_window``), and move the window across its target:

* up to the target (an earn): the window completes: the bonus is posted (``bonus.post_bonus``)
  and the badge given, in the same transaction;
* below the target again (a return undid a purchase it counted): the completion is undone: the
  bonus is reversed by a new correcting entry (``bonus.reverse_bonus``) and that window's badge
  revoked. Another purchase in the same window may complete it again (a second completion,
  its own key).

Reads are bounded: the challenges in force (a small table), the member's latest window of each
(``ix_challenge_windows_latest``), the window's own rows; a return finds the windows its earn
counted in through ``ix_challenge_progress_purchase``. The earn's own transaction is untouched:
all of this runs later, from the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.challenges import bonus
from gateway.challenges import repository as repo
from gateway.challenges.model import (
    COALITION,
    Challenge,
    ProgressRow,
    Window,
    deadline,
    progress,
    window_for,
)
from gateway.core.clock import Clock
from gateway.ledger.runner import Tx, transact
from gateway.members.repository import MemberRepository
from gateway.outbox import Event, emit

EARNED, RETURNED = "points.earned", "points.returned"
TYPES = frozenset({EARNED, RETURNED})


def handle(engine: Engine, event: Event, clock: Clock) -> None:
    """Apply one event (idempotent under ``event.id``); commits its own transaction."""
    if event.member_id is None or event.type not in TYPES:
        return
    if event.type == EARNED and not _purchase(event.data):
        return

    def body(conn: Connection) -> None:
        tx = Tx.on(conn, clock.now())
        member_id = MemberRepository(conn).survivor_of(str(event.member_id))
        if event.type == EARNED:
            _earned(tx, member_id, event)
        else:
            _returned(tx, member_id, event)

    transact(engine, body)


def _purchase(data: Any) -> bool:
    return isinstance(data.get("amount_minor"), int) and isinstance(data.get("currency"), str)


def _earned(tx: Tx, member_id: str, event: Event) -> None:
    data = event.data
    row = ProgressRow(str(data["operation_id"]), str(event.partner_id), event.occurred_at,
                      int(data["amount_minor"]), str(data["currency"]))
    _count(tx, member_id, event.id, row)


def _count(tx: Tx, member_id: str, event_id: str, row: ProgressRow) -> None:
    """Count the earn ``row`` in every challenge it qualifies for, once: a challenge where this
    earn counted already (its own event, or a return that came first) is left alone."""
    wanted = [c for c in repo.in_force(tx.conn, row.occurred_at)
              if c.qualifies(row.partner_id, row.amount_minor, row.currency)]
    if not wanted:
        return
    tx.ledger.lock_member(member_id)
    already = {place.challenge_id for place in repo.counted(tx.conn, row.purchase_operation_id)}
    for challenge in wanted:
        if challenge.id in already:
            continue
        latest = repo.latest_window(tx.conn, challenge.id, member_id, row.occurred_at)
        window = window_for(challenge, row.occurred_at, None if latest is None else latest.window)
        if not repo.add_progress(tx.conn, event_id=event_id, challenge_id=challenge.id,
                                 member_id=member_id, window_key=window.key, row=row,
                                 operation_id=row.purchase_operation_id, now=tx.now):
            continue  # this event counted here already
        stored = repo.window(tx.conn, challenge.id, member_id, window.key)
        _settle(tx, challenge, member_id, window, stored, row.purchase_operation_id)


def _returned(tx: Tx, member_id: str, event: Event) -> None:
    data = event.data
    earn_id, amount = data.get("parent_id"), data.get("amount_minor")
    if not isinstance(earn_id, str) or not isinstance(amount, int) or amount <= 0:
        return
    places = repo.counted(tx.conn, earn_id)
    if not places:
        # Delivery is at least once, in no promised order: a return may come before its earn's
        # event. The earn is counted first from its operation (keyed by the operation's id;
        # its own event then finds it counted), so the return always has something to undo.
        earn = repo.earn_of(tx.conn, earn_id)
        if earn is None:
            return
        _count(tx, member_id, earn_id, earn)
        places = repo.counted(tx.conn, earn_id)
        if not places:
            return
    tx.ledger.lock_member(member_id)
    for place in places:
        challenge = repo.find(tx.conn, place.challenge_id)
        if challenge is None:
            continue
        undo = replace(place.row, amount_minor=-amount)
        if not repo.add_progress(tx.conn, event_id=event.id, challenge_id=challenge.id,
                                 member_id=place.member_id, window_key=place.window_key,
                                 row=undo, operation_id=str(data["operation_id"]), now=tx.now):
            continue
        stored = repo.window(tx.conn, challenge.id, place.member_id, place.window_key)
        if stored is None:  # the row was written with its window: never happens
            continue
        _settle(tx, challenge, place.member_id, stored.window, stored, None)


def _settle(tx: Tx, challenge: Challenge, member_id: str, window: Window,
            stored: repo.WindowState | None, earn_id: str | None) -> None:
    """Recompute the window from its rows; complete it, or undo its completion."""
    rows = repo.window_rows(tx.conn, challenge.id, member_id, window.key)
    found = progress(challenge, window, rows)
    state = stored or repo.WindowState(window, 0, challenge.target, 0, None, None, 0)
    state = replace(state, window=replace(window, ends_at=found.ends_at), done=found.done)
    if state.completed_at is None and found.done >= state.target and earn_id is not None:
        state = _complete(tx, challenge, member_id, state, earn_id)
    elif state.completed_at is not None and found.done < state.target:
        state = _undo(tx, challenge, member_id, state)
    repo.save_window(tx.conn, challenge.id, member_id, state, now=tx.now, new=stored is None)
    _recount(tx, challenge, member_id, stored, state)


def _open_day(challenge: Challenge, state: repo.WindowState | None) -> date | None:
    """The last day the window counts as in progress (progress made, not completed)."""
    if state is None or state.completed_at is not None or state.done <= 0:
        return None
    return repo.last_open_day(deadline(challenge, state.window))


def _recount(tx: Tx, challenge: Challenge, member_id: str, stored: repo.WindowState | None,
             state: repo.WindowState) -> None:
    """Move the partner's counts with the window, in its transaction (decision 032): the window
    leaves its old in-progress day and joins its new one; the member joins (leaves) the
    completed count when this is their first (last) standing completion. Rows are touched in
    (challenge, day) order, so two consumers never wait on each other in a cycle."""
    was, now = _open_day(challenge, stored), _open_day(challenge, state)
    if was != now:
        moves = sorted([(d, -1) for d in (was,) if d is not None]
                       + [(d, 1) for d in (now,) if d is not None])
        for day, by in moves:
            repo.move_open(tx.conn, challenge.id, day, by)
    was_done = stored is not None and stored.completed_at is not None
    is_done = state.completed_at is not None
    if was_done != is_done and not repo.other_completion(tx.conn, challenge.id, member_id,
                                                         state.window.key):
        repo.move_completed(tx.conn, challenge.id, 1 if is_done else -1)


def _complete(tx: Tx, challenge: Challenge, member_id: str, state: repo.WindowState,
              earn_id: str) -> repo.WindowState:
    completion = state.completions + 1
    paid = bonus.post_bonus(tx, challenge, member_id, state.window.key, completion, earn_id)
    repo.award_badge(tx.conn, member_id, challenge, state.window.key, tx.now)
    _emit(tx, "challenge.completed", challenge, member_id, state.window.key, completion, paid)
    return replace(state, completions=completion, completed_at=tx.now,
                   bonus_operation_id=paid,
                   bonus_points=challenge.bonus_points if paid else 0,
                   window=replace(state.window, completed=True))


def _undo(tx: Tx, challenge: Challenge, member_id: str,
          state: repo.WindowState) -> repo.WindowState:
    if state.bonus_operation_id is not None:
        bonus.reverse_bonus(tx, challenge, member_id, state.window.key, state.completions,
                            state.bonus_operation_id)
    repo.revoke_badge(tx.conn, member_id, challenge.id, state.window.key, tx.now)
    _emit(tx, "challenge.undone", challenge, member_id, state.window.key, state.completions,
          state.bonus_operation_id)
    return replace(state, completed_at=None, bonus_operation_id=None, bonus_points=0,
                   window=replace(state.window, completed=False))


def _emit(tx: Tx, type: str, challenge: Challenge, member_id: str, window_key: str,
          completion: int, bonus_operation_id: str | None) -> None:
    """The completion (or its undoing) as an event of its own, in the same transaction, for
    webhooks (the owner's) and notifications (the member's)."""
    emit(tx.conn, type, partner_id=None if challenge.owner == COALITION else challenge.owner,
         member_id=member_id, at=tx.now, operation_id=bonus_operation_id, data={
             "challenge_id": challenge.id, "window": window_key, "completion": completion,
             "badge": challenge.badge, "bonus_points": challenge.bonus_points,
             "bonus_operation_id": bonus_operation_id})


def handle_all(engine: Engine, clock: Clock, events: Iterable[Event]) -> int:
    """Handle each event in order (tests, replays); the number handled."""
    n = 0
    for event in events:
        handle(engine, event, clock)
        n += 1
    return n
