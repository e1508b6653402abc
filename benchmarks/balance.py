"""Benchmark 2: the member balance query with 1,000,000 transfers stored, against the same query
on an empty ledger (same members, no transfers). Target: <= 1.2x (p50 latency; throughput at
least 1/1.2 of the empty ledger's). A balance is a stored column plus an indexed aggregate over
the member's own lots, so history length elsewhere must not show. The measuring is
``benchmarks/ledger_size.py``, shared with the member's own wallet (``viewer``)."""

from __future__ import annotations

from benchmarks import ledger_size
from benchmarks.env import Backend, Plan
from benchmarks.table import Row

NAME = "balance"
BODY = ('{"query": "query Balance($c: ID!) { member(customerId: $c) { __typename '
        '... on Member { balance { available held pending debt expiringSoon } } '
        '... on Error { code message } } }", "variables": {"c": "@CUSTOMER@"}}')
MARKER = '"Member"'
READ = ledger_size.Read(NAME, BODY, MARKER, prefix="c")


def run(backend: Backend, plan: Plan) -> list[Row]:
    return ledger_size.run(READ, backend, plan)
