"""Challenges' commands and reads, one transaction each: define or end one (an owner's own only:
another owner's id answers like a missing one), sync the coalition's catalog file, and the two
views: a member's progress and badges, a partner's challenges with their counts."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from gateway.challenges import parsing
from gateway.challenges import repository as repo
from gateway.challenges.model import (
    COALITION,
    Challenge,
    WindowKind,
    deadline,
    month_start,
    next_month,
)
from gateway.core.errors import InvalidInput
from gateway.db.tables import partners
from gateway.db.uow import UnitOfWork

CATALOG_FILE = Path("coalition") / "challenges.toml"  # under the partner catalog directory


def known_partners(conn: Connection) -> frozenset[str]:
    return frozenset(str(p) for p in conn.execute(select(partners.c.id)).scalars())


def define(engine: Engine, raw: Mapping[str, Any], *, owner: str, actor: str, now: datetime,
           field_name: Callable[[str], str] = parsing.snake) -> Challenge:
    """Store ``raw`` as ``owner``'s challenge (``repository.define``: new, unchanged, or a new
    version before it starts); ``field_name`` renders the field an error names."""
    with UnitOfWork(engine) as uow:
        challenge = parsing.parse_challenge(raw, owner=owner,
                                            known_partners=known_partners(uow.conn),
                                            field_name=field_name)
        stored = repo.define(uow.conn, challenge, actor=actor, now=now)
        uow.commit()
    return stored


def end(engine: Engine, owner: str, challenge_id: str, at: datetime | None, *, actor: str,
        now: datetime) -> Challenge:
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at must be a time with its offset", field="at")
    with UnitOfWork(engine) as uow:
        stored = repo.end(uow.conn, owner, parsing.qualified_id(owner, challenge_id),
                          now if at is None else at, actor=actor, now=now)
        uow.commit()
    return stored


# --- the coalition's catalog file -------------------------------------------------------------
def catalog_path(catalog_dir: Path) -> Path:
    return catalog_dir / CATALOG_FILE


def read_catalog(path: Path) -> list[Mapping[str, Any]]:
    """The file's ``[[challenges]]`` tables (no file: none), checked for shape only."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{path}: invalid TOML: {error}", field="file") from None
    unknown = sorted(set(data) - {"challenges"})
    if unknown:
        raise InvalidInput(f"{path}: {unknown[0]}: unknown key (known: challenges)",
                           field=unknown[0])
    found = data.get("challenges", [])
    if not isinstance(found, list) or not all(isinstance(c, dict) for c in found):
        raise InvalidInput(f"{path}: challenges: an array of tables ([[challenges]])",
                           field="challenges")
    return found


def check_catalog(path: Path, partner_ids: frozenset[str]) -> list[Challenge]:
    """Every coalition challenge in the file, validated strictly (a start-up check)."""
    found = []
    for n, raw in enumerate(read_catalog(path)):
        found.append(parsing.parse_challenge(raw, owner=COALITION, known_partners=partner_ids,
                                             where=f"{path}: challenges[{n}]"))
    ids = [c.id for c in found]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise InvalidInput(f"{path}: challenge id {duplicate!r} is defined twice", field="id")
    return found


def sync_catalog(engine: Engine, path: Path, *, actor: str, now: datetime) -> list[Challenge]:
    """Store the file's coalition challenges: new ones as version 1, changed ones not yet
    started as a new version; a changed started one is CHALLENGE_STARTED (nothing stored)."""
    with UnitOfWork(engine) as uow:
        wanted = check_catalog(path, known_partners(uow.conn))
        stored = [repo.define(uow.conn, c, actor=actor, now=now) for c in wanted]
        uow.commit()
    return stored


# --- views ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberProgress:
    challenge: Challenge
    done: int
    window_ends_at: datetime | None  # None: the window opens with the next qualifying purchase
    completed: bool
    completions: int  # in the current window


def member_challenges(engine: Engine, member_id: str, now: datetime) -> list[MemberProgress]:
    """Progress in every challenge in force: one indexed read of the latest window each."""
    with UnitOfWork(engine, write=False) as uow:
        running = repo.in_force(uow.conn, now)
        latest = {c.id: repo.latest_window(uow.conn, c.id, member_id, now) for c in running}
    return [_progress(c, latest[c.id], now) for c in running]


def _progress(c: Challenge, state: repo.WindowState | None, now: datetime) -> MemberProgress:
    """The window running now: a month's is the calendar month; a rolling window or a streak
    runs from its first purchase (a streak while it can still be extended), else none yet."""
    if c.window is WindowKind.MONTH:
        start = month_start(now)
        if state is None or state.window.starts_at != start:
            return MemberProgress(c, 0, next_month(start), False, 0)
        return MemberProgress(c, state.done, next_month(start), state.completed_at is not None,
                              state.completions)
    if state is None:
        return MemberProgress(c, 0, None, False, 0)
    completed = state.completed_at is not None
    end = state.window.ends_at if completed else deadline(c, state.window)
    if now >= end:
        return MemberProgress(c, 0, None, False, 0)
    return MemberProgress(c, state.done, end, completed, state.completions)


def member_badges(engine: Engine, member_id: str) -> list[repo.BadgeCount]:
    with UnitOfWork(engine, write=False) as uow:
        return repo.badges(uow.conn, member_id)


@dataclass(frozen=True, slots=True)
class OwnedChallenge:
    challenge: Challenge
    members_in_progress: int
    members_completed: int


def owned(engine: Engine, owner: str, now: datetime) -> list[OwnedChallenge]:
    """An owner's challenges (a partner: its own only) with member counts: those with progress
    in a window still open, those who completed one. Counts only: never who."""
    with UnitOfWork(engine, write=False) as uow:
        found = repo.owned(uow.conn, owner)
        counts = repo.counts(uow.conn, [c.id for c in found], now)
    return [OwnedChallenge(c, counts[c.id].in_progress, counts[c.id].completed) for c in found]
