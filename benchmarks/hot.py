"""Benchmark 6 (issue 11): a hot partner. 32 concurrent ``earnPoints`` all at one partner
against 32 spread over many partners, same server build, same customers per partner, in the
same run. Target: hot >= 0.7x spread in throughput.

Every earn at a partner posts to that partner's ``issued`` account; if that account were a
balance row updated per posting, one partner's traffic would queue on its row lock (DESIGN §4,
"Hot accounts"). The spread run needs several partners with clients of their own: the shipped
catalog has two that earn in UAH, so the benchmark writes a catalog of its own (the grocery's
file under :data:`PARTNERS` ids, ``GATEWAY_CATALOG_DIR``), registers a client per partner on the
seeded database and takes each one's token from ``/oauth/token``; wrk hands the tokens out in
turn (benchmarks/wrk/graphql.lua)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks import earn, seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.auth.clients import ensure_demo_client
from gateway.auth.scopes import DEFAULT_ALLOWANCE
from gateway.db.tables import operations
from gateway.settings import DEFAULT_CATALOG

NAME = "hot"
CONNECTIONS = 32
PARTNERS = ("grocery", *(f"shop{n}" for n in range(1, 8)))  # 8 partners for the spread run
TARGET = 0.7


def write_catalog(directory: Path) -> Path:
    """The shipped catalog plus copies of the grocery under the other :data:`PARTNERS` ids."""
    directory.mkdir(parents=True, exist_ok=True)
    for shipped in DEFAULT_CATALOG.glob("*.toml"):
        (directory / shipped.name).write_text(shipped.read_text())
    grocery = (DEFAULT_CATALOG / "grocery.toml").read_text()
    for partner in PARTNERS[1:]:
        text = re.sub(r'(?m)^id = "grocery"$', f'id = "{partner}"', grocery, count=1)
        text = re.sub(r'(?m)^name = ".*"$', f'name = "Bench {partner}"', text, count=1)
        (directory / f"{partner}.toml").write_text(text)
    return directory


def _client(partner: str) -> tuple[str, str]:
    return f"{partner}-bench", f"{partner}-bench-secret"


def run(backend: Backend, plan: Plan) -> list[Row]:
    workers = serve.effective_workers(plan.workers, backend.name)
    catalog = write_catalog(backend.workdir / "hot-catalog")
    per_partner = plan.members
    progress(f"[hot] {backend.label}: {len(PARTNERS)} partners, {per_partner:,} customers each")
    url = backend.fresh_database(NAME)
    engine = seed.prepare(url, catalog).services.engine
    for k, partner in enumerate(PARTNERS):
        seed.enrol(engine, per_partner, "c", start=k * per_partner, partner=partner,
                   first_customer=0)
        ensure_demo_client(engine, partner, *_client(partner), DEFAULT_ALLOWANCE["partner"])
    engine.dispose()
    common: dict[str, Any] = {"ok_marker": "EarnPointsSuccess", "customers": per_partner,
                              "connections": CONNECTIONS}
    with serve.gateway(url, backend.workdir, workers=workers, redis_url=backend.redis_url,
                       extra_env={"GATEWAY_CATALOG_DIR": str(catalog)}) as server:
        graphql = f"{server.base_url}/graphql"
        tokens = [serve.token(server.base_url, _client(p)) for p in PARTNERS]
        runs: dict[str, LoadResult] = {}
        for label, token in (("spread", " ".join(tokens)), ("hot", tokens[0])):
            if plan.warmup_seconds:
                wrk(graphql, earn.BODY, token=token, seconds=plan.warmup_seconds,
                    label=f"{label} warm-up", **common)
            runs[label] = wrk(graphql, earn.BODY, token=token, seconds=plan.seconds,
                              label=f"{CONNECTIONS} earns {label}", **common)
    hot, spread = runs["hot"], runs["spread"]
    failed = hot.bad + spread.bad
    stored = _earns_per_partner(url, catalog)
    others = [stored.get(p, 0) for p in PARTNERS[1:]]
    note = (f"{workers} worker(s); {CONNECTIONS} connections all at grocery vs spread over "
            f"{len(PARTNERS)} partners; p50 {hot.p50_ms:.2f} vs {spread.p50_ms:.2f} ms, "
            f"p99 {hot.p99_ms:.2f} vs {spread.p99_ms:.2f} ms; earns stored: grocery "
            f"{stored.get('grocery', 0):,}, each other partner {min(others):,} to {max(others):,}")
    if min(others) == 0:
        failed += 1
        note += "; a partner of the spread run got no earn"
    if failed:
        note += f"; {failed} failed, e.g. {hot.sample_bad or spread.sample_bad}"
    row = ratio_row(NAME, backend.label, "earn throughput, one partner vs spread (req/s)",
                    hot.rps, spread.rps, at_least=TARGET, note=note)
    return [row if not failed else replace(row, met=False)]


def _earns_per_partner(url: str, catalog: Path) -> dict[str, int]:
    engine = seed.prepare(url, catalog).services.engine
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(operations.c.partner_id, func.count())
                                .where(operations.c.kind == "earn")
                                .group_by(operations.c.partner_id)).all()
    finally:
        engine.dispose()
    return {partner: int(count) for partner, count in rows}
