"""Benchmark: the member's own ``viewer { wallet }`` query with 1,000,000 transfers stored,
against the same query on an empty ledger (same members, no transfers). Target: <= 1.2x (p50;
throughput at least 1/1.2 of the empty ledger's). The wallet reads stored balances and the
member's own lots through indexes led by the member id, so the rest of the ledger must not show.

Measured by ``benchmarks/ledger_size.py`` (shared with ``balance``); the member token is minted
by the gateway's own TokenService on the seeded database (signing keys are shared), for a
first-party ``app`` client, exactly as the portal gets one."""

from __future__ import annotations

from benchmarks import ledger_size, seed
from benchmarks.env import Backend, Plan
from benchmarks.table import Row
from gateway.app import Gateway

NAME = "viewer"
BODY = ('{"query": "query Wallet { viewer { __typename ... on Viewer { wallet { available held '
        'debt pending pendingReleases { releaseAt points } expiring { date points } } } '
        '... on Error { code message } } }", "variables": {}}')
MARKER = '"Viewer"'
MEMBER = 7  # the member whose wallet is read (seeded like every other one)


def member_token(gw: Gateway) -> str:
    app = gw.auth.clients.create(name="bench app", kind="app", partner_id=None,
                                 scopes=["member"], actor="bench")
    return gw.auth.tokens.issue(app.client, ["member"],
                                member_id=seed.member_id(MEMBER)).access_token


READ = ledger_size.Read(NAME, BODY, MARKER, prefix="v", metric="wallet ", spread=False,
                        mint=member_token)


def run(backend: Backend, plan: Plan) -> list[Row]:
    return ledger_size.run(READ, backend, plan)
