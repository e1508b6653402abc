"""Review 2 of issue 13: bounded partner counts. ``challenge_totals`` (members with a standing
completion, per challenge), ``challenge_open_days`` (windows in progress by the last UTC day
each is open) and ``draw_totals`` (a draw's entries and entrants), each kept by the writes it
counts, so the partner's challenge and draw listings read primary-key rows only (decisions 032
and 033). Filled here from the rows they summarise (once; a database made by ``create_all``
gets the rows it lacks).

Idempotent like 0015/0016 (``if_not_exists``), so a ``create_all`` database is adopted unchanged.

Revision ID: 0023_bounded
Revises: 0022_review1
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0023_bounded"
down_revision: str | Sequence[str] | None = "0022_review1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEEK = timedelta(days=7)  # a streak stays open a week after its last counted week


def upgrade() -> None:
    op.create_table(
        "challenge_totals",
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("members_completed", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"]),
        sa.PrimaryKeyConstraint("challenge_id"),
        if_not_exists=True,
    )
    op.create_table(
        "challenge_open_days",
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("members", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"]),
        sa.PrimaryKeyConstraint("challenge_id", "last_day"),
        if_not_exists=True,
    )
    op.create_table(
        "draw_totals",
        sa.Column("draw_id", sa.String(length=40), nullable=False),
        sa.Column("entries", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("entrants", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"]),
        sa.PrimaryKeyConstraint("draw_id"),
        if_not_exists=True,
    )
    if not op.get_context().as_sql:
        _fill_challenges(op.get_bind())
        _fill_draws(op.get_bind())


def downgrade() -> None:
    op.drop_table("draw_totals")
    op.drop_table("challenge_open_days")
    op.drop_table("challenge_totals")


def _fill_challenges(bind: sa.Connection) -> None:
    challenges = sa.table("challenges", sa.column("id", sa.String),
                          sa.column("definition", sa.Text))
    windows = sa.table("challenge_windows", sa.column("challenge_id", sa.String),
                       sa.column("member_id", sa.String), sa.column("ends_at", sa.DateTime),
                       sa.column("done", sa.Integer), sa.column("completed_at", sa.DateTime))
    totals = sa.table("challenge_totals", sa.column("challenge_id", sa.String),
                      sa.column("members_completed", sa.Integer))
    days = sa.table("challenge_open_days", sa.column("challenge_id", sa.String),
                    sa.column("last_day", sa.Date), sa.column("members", sa.Integer))
    filled = set(bind.execute(sa.select(totals.c.challenge_id)).scalars()) | set(
        bind.execute(sa.select(days.c.challenge_id)).scalars())
    for challenge_id, definition in bind.execute(sa.select(challenges.c.id,
                                                           challenges.c.definition)).all():
        if challenge_id in filled:
            continue
        streak = json.loads(definition).get("window") == "streak"
        completed = bind.execute(
            sa.select(sa.func.count(sa.func.distinct(windows.c.member_id)))
            .where(windows.c.challenge_id == challenge_id,
                   windows.c.completed_at.is_not(None))).scalar_one()
        if completed:
            bind.execute(totals.insert().values(challenge_id=challenge_id,
                                                members_completed=int(completed)))
        open_days: dict[date, int] = defaultdict(int)
        for (ends_at,) in bind.execute(sa.select(windows.c.ends_at).where(
                windows.c.challenge_id == challenge_id, windows.c.completed_at.is_(None),
                windows.c.done > 0)):
            at = ends_at if isinstance(ends_at, datetime) else datetime.fromisoformat(ends_at)
            at = at.replace(tzinfo=None) + (WEEK if streak else timedelta(0))
            open_days[(at - timedelta(microseconds=1)).date()] += 1
        if open_days:
            bind.execute(days.insert(), [{"challenge_id": challenge_id, "last_day": day,
                                          "members": n} for day, n in sorted(open_days.items())])


def _fill_draws(bind: sa.Connection) -> None:
    draws = sa.table("draws", sa.column("id", sa.String), sa.column("status", sa.String))
    entries = sa.table("draw_entries", sa.column("draw_id", sa.String),
                       sa.column("member_id", sa.String), sa.column("entries", sa.Integer))
    entrants = sa.table("draw_entrants", sa.column("draw_id", sa.String),
                        sa.column("entries", sa.Integer))
    totals = sa.table("draw_totals", sa.column("draw_id", sa.String),
                      sa.column("entries", sa.BigInteger), sa.column("entrants", sa.Integer))
    filled = set(bind.execute(sa.select(totals.c.draw_id)).scalars())
    rows = []
    for draw_id, status in bind.execute(sa.select(draws.c.id, draws.c.status)).all():
        if draw_id in filled:
            continue
        if status == "closed":
            held = [int(n) for n in bind.execute(
                sa.select(entrants.c.entries).where(entrants.c.draw_id == draw_id)).scalars()]
        else:
            held = [int(n) for n in bind.execute(
                sa.select(sa.func.sum(entries.c.entries)).where(entries.c.draw_id == draw_id)
                .group_by(entries.c.member_id)).scalars() if int(n) > 0]
        rows.append({"draw_id": draw_id, "entries": sum(held), "entrants": len(held)})
    if rows:
        bind.execute(totals.insert(), rows)
