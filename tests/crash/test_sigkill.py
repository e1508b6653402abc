"""Crash safety: SIGKILL a real gateway process mid-load, restart it, retry, and audit.

The promise under test (ledger guarantee 5 plus durability): an answer the gateway gave is
final, and a request it never answered can be retried with its idempotency key until it is.
So after a SIGKILL of the server and all its workers while earns and redeems are in flight:

* every request is retried with the same key and body until it gets a definitive answer;
* every acknowledged success, re-sent, answers field for field as the first time (a replay:
  nothing new is written);
* in the database each succeeded key has exactly one operation, with the id, kind and points
  the API answered; refused keys have none; there are no other operations;
* each member's stored wallet balance is the sum of the answered earns minus redeems;
* ``python -m gateway verify`` on the same database exits 0 with "0 problems".

The server is ``python -m gateway serve --demo`` on this run's backend (a SQLite file, or a fresh
PostgreSQL database with ``GATEWAY_TEST_BACKEND=postgresql``), with one worker and, where
``serve`` has ``--workers``, with two. A kill that caught no request in flight proves nothing,
so the test fails if none was; and a few earns are sent first on connections whose answers are
never read, so some unacknowledged requests surely committed before the kill and their retry
must be a replay of the stored answer. The load is seeded (the seed is printed) and the counts
are printed for the record (``pytest -s``).

That the test can fail was checked by breaking the server in a copy of the tree: skipping the
idempotency lookup, bumping a replayed ``available``, crediting a point too many, and answering
3 % of commands without committing each made it fail."""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db import tables as t
from gateway.db.engine import make_engine
from tests.crash.load import (
    LOST_ANSWERS,
    Outcome,
    Session,
    enrol_members,
    in_parallel,
    kill_mid_load,
    plan,
    replay,
    retry_until_definitive,
)
from tests.support import harness, process

WORKERS = [1, 2]


def server_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "GATEWAY_ISSUER": "https://gateway.crash.test",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000", "GATEWAY_RATE_LIMIT_BURST": "1000000"}


class Phases:
    """Wall time per phase, for the printed record (never asserted: no timed assertions)."""

    def __init__(self) -> None:
        self.last, self.spent = time.monotonic(), dict[str, float]()

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.spent[name], self.last = round(now - self.last, 2), now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds}" for name, seconds in self.spent.items())


@pytest.mark.slow
@pytest.mark.parametrize("workers", WORKERS)
def test_sigkill_mid_load_loses_and_duplicates_nothing(tmp_path: Path, workers: int) -> None:
    seed = random.randrange(1 << 32)
    database_url = harness.database_url(tmp_path)
    env = server_env(database_url)
    args = ["--demo", *(["--workers", str(workers)] if workers > 1 else [])]
    log_path = tmp_path / "server.log"
    print(f"\nseed {seed}, backend {harness.BACKEND}, {workers} worker(s), log {log_path}")
    phases = Phases()
    try:
        with process.running(env, args, log_path=log_path) as server:
            session = Session.connect(server.base_url)
            members = enrol_members(session, database_url)
            phases.mark("start+enrol")
            outcomes, killed_at = kill_mid_load(server, session,
                                                plan(random.Random(seed), f"k{seed}"))
            phases.mark("load+kill")
        unacked = [o for o in outcomes if o.first is None]
        in_flight = [o for o in unacked if not o.lost and o.started_at < killed_at]
        assert in_flight, "no request was in flight at the kill: it was not mid-load"

        with process.running(env, args, log_path=log_path) as server:
            restarted_at = time.time()
            session = Session.connect(server.base_url)
            phases.mark("restart")
            in_parallel(unacked, lambda client, o: retry_until_definitive(session, client, o))
            phases.mark("retry")
            answered = [o for o in outcomes if o.succeeded]
            replays = in_parallel(answered, lambda client, o: replay(session, client, o))
            phases.mark("replay")
            for outcome, again in zip(answered, replays, strict=True):
                assert again == outcome.final, f"{outcome.request.key} answered differently"
        stored = audit_database(database_url, members, outcomes)
        phases.mark("audit")
        verified = run_verify(env)
        phases.mark("verify")
    except BaseException:
        print(f"--- server output ---\n{log_path.read_text(errors='replace')}")
        raise
    # Retries are replays: the earns whose answers were lost had committed before the kill, and
    # their retry answered what was stored then (the audit matched ids and points).
    replayed = [o for o in unacked if o.succeeded and stored[o.request.key] < restarted_at]
    assert any(o.lost for o in replayed), "no lost answer was committed before the kill"
    kinds = Counter((o.request.mutation, o.final["__typename"]) for o in outcomes if o.final)
    print(f"sent {len(outcomes)}, acknowledged {len(outcomes) - len(unacked)}, unacknowledged "
          f"{len(unacked)} ({len(in_flight)} in flight at the kill, {LOST_ANSWERS} lost "
          f"answers), {sum(o.retries for o in unacked)} retries; {len(replayed)} unacknowledged "
          f"had committed before the kill ({sum(not o.lost for o in replayed)} of those in "
          f"flight), their retry was a replay; replayed {len(answered)} successes; answers "
          f"{dict(kinds)}; verify: {verified}; seconds: {phases}")


GROUP_COMMIT_THREADS = 32


@pytest.mark.slow
@pytest.mark.skipif(harness.BACKEND != "sqlite", reason="group commit is SQLite's")
def test_sigkill_during_group_commits_leaves_whole_batches(tmp_path: Path) -> None:
    """Earns only, from 32 connections at once: on one SQLite worker they are committed in
    batches (gateway.db.batch), so the kill lands while batches are being run or made
    durable. Straight after the kill, before any retry, the database holds every acknowledged
    earn exactly once, as answered, and nothing partial: each stored earn is whole (its
    member's wallet is the sum of the stored earns, verify is clean), so a batch is stored
    whole or not at all. Then the usual restart, retry, replay and audit."""
    seed = random.randrange(1 << 32)
    database_url = harness.database_url(tmp_path)
    env = server_env(database_url)
    log_path = tmp_path / "server.log"
    print(f"\nseed {seed}, group commit, log {log_path}")
    try:
        with process.running(env, ["--demo"], log_path=log_path) as server:
            session = Session.connect(server.base_url)
            members = enrol_members(session, database_url)
            outcomes, killed_at = kill_mid_load(
                server, session, plan(random.Random(seed), f"b{seed}", earn_share=1.0),
                threads=GROUP_COMMIT_THREADS)
        unacked = [o for o in outcomes if o.first is None]
        in_flight = [o for o in unacked if not o.lost and o.started_at < killed_at]
        assert in_flight, "no request was in flight at the kill: it was not mid-load"
        committed = audit_after_kill(database_url, members, outcomes)
        verified_at_kill = run_verify(env)

        with process.running(env, ["--demo"], log_path=log_path) as server:
            session = Session.connect(server.base_url)
            in_parallel(unacked, lambda client, o: retry_until_definitive(session, client, o))
            answered = [o for o in outcomes if o.succeeded]
            replays = in_parallel(answered, lambda client, o: replay(session, client, o))
            for outcome, again in zip(answered, replays, strict=True):
                assert again == outcome.final, f"{outcome.request.key} answered differently"
        audit_database(database_url, members, outcomes)
        verified = run_verify(env)
    except BaseException:
        print(f"--- server output ---\n{log_path.read_text(errors='replace')}")
        raise
    print(f"sent {len(outcomes)}, acknowledged {len(outcomes) - len(unacked)}, "
          f"{len(in_flight)} in flight at the kill, {committed} unacknowledged but committed "
          f"before it; verify at the kill: {verified_at_kill}; after retries: {verified}")


def audit_after_kill(database_url: str, members: list[str], outcomes: list[Outcome]) -> int:
    """Before any retry: every acknowledged earn is stored once, as answered; every stored
    earn is one that was sent; each member's wallet is the sum of its stored earns. Returns
    how many unacknowledged earns had committed."""
    engine = harness.track(make_engine(database_url))
    with engine.connect() as conn:
        rows = conn.execute(select(t.operations.c.idempotency_key, t.operations.c.id,
                                   t.operations.c.points, t.operations.c.member_id)).all()
        wallets = dict(conn.execute(select(t.accounts.c.member_id, t.accounts.c.balance).where(
            t.accounts.c.kind == "wallet")).all())
    engine.dispose()
    by_key = Counter(row.idempotency_key for row in rows)
    assert all(n == 1 for n in by_key.values()), "an earn stored twice"
    stored = {row.idempotency_key: row for row in rows}
    sent = {o.request.key: o for o in outcomes}
    assert set(stored) <= set(sent), "an operation stored that was never sent"
    for outcome in outcomes:
        if outcome.first is not None:
            assert outcome.first["__typename"] == "EarnPointsSuccess", outcome.first
            row = stored.get(outcome.request.key)
            assert row is not None, f"{outcome.request.key} was acknowledged but is not stored"
            assert (row.id, row.points) == (outcome.first["operationId"],
                                            outcome.first["points"])
    expected = dict.fromkeys(members, 0)
    for row in rows:
        expected[row.member_id] += row.points
    assert {m: wallets.get(m, 0) for m in members} == expected
    return sum(1 for key in stored if sent[key].first is None)


def audit_database(database_url: str, members: list[str],
                   outcomes: list[Outcome]) -> dict[str, float]:
    """The database holds exactly the answered operations; returns each succeeded key's
    recording time (epoch seconds)."""
    engine = harness.track(make_engine(database_url))
    with engine.connect() as conn:
        rows = conn.execute(select(
            t.operations.c.partner_id, t.operations.c.idempotency_key, t.operations.c.id,
            t.operations.c.kind, t.operations.c.points, t.operations.c.member_id,
            t.operations.c.recorded_at,
        )).all()
        wallets = dict(conn.execute(select(t.accounts.c.member_id, t.accounts.c.balance).where(
            t.accounts.c.kind == "wallet")).all())
    by_key: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_key[(row.partner_id, row.idempotency_key)].append(row)

    expected = dict.fromkeys(members, 0)
    recorded: dict[str, float] = {}
    for outcome in outcomes:
        request, answer = outcome.request, outcome.final
        assert answer is not None
        found = by_key.get((request.partner, request.key), [])
        if not outcome.succeeded:
            assert found == [], f"{request.key} was refused ({answer}) but is stored: {found}"
            continue
        assert len(found) == 1, f"{request.key}: {len(found)} operations"
        row = found[0]
        sign = 1 if request.mutation == "earnPoints" else -1
        assert (row.id, row.kind, row.points, row.member_id) == (
            answer["operationId"], "earn" if sign > 0 else "redeem", sign * answer["points"],
            members[request.member]), f"{request.key}: stored {row}, answered {answer}"
        expected[members[request.member]] += sign * answer["points"]
        recorded[request.key] = row.recorded_at.timestamp()
    # Nothing but the load wrote operations: every row is one of the answered successes.
    assert len(rows) == len(recorded), "operations stored that no answer accounts for"
    assert {m: wallets.get(m, 0) for m in members} == expected
    return recorded


def run_verify(env: dict[str, str]) -> str:
    done = subprocess.run([process.PYTHON, "-m", "gateway", "verify"], cwd=process.ROOT,
                          env=process.server_env(env), capture_output=True, text=True,
                          timeout=120, check=False)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"verify exited {done.returncode}:\n{done.stdout}{done.stderr}"
    assert last.endswith(" 0 problems"), done.stdout
    return last
