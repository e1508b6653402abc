"""Prometheus metrics for one gateway process, and the ``/metrics`` endpoint that exposes them.

Each ``build`` gets its own ``Metrics`` (its own registry), so tests that build many gateways in
one process never share counters. Under ``gateway serve`` the parent sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before any worker imports
``prometheus_client``: every worker then writes its values to memory-mapped files there, and
``/metrics`` (answered by whichever worker the connection reached) merges all of them with
``MultiProcessCollector``, so counters are sums over workers. A worker that exits is marked dead
(its live gauges are dropped, its counters kept) at shutdown or, if it was killed, at the next
scrape. Per-process figures (memory, CPU, open files) come from ``ProcessCollector`` in a single
process and from ``gateway_worker_*`` gauges, one series per live worker ``pid``, in multiprocess
mode (the collector cannot be merged across processes).

Route labels are route templates (``/graphql``), never raw paths, to bound cardinality.
"""

from __future__ import annotations

import asyncio
import glob
import hmac
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import multiprocess as mp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# 1 ms .. 5 s: a cached read is a few ms, an earn on PostgreSQL tens of ms, a settlement page
# seconds; above 5 s the client has given up anyway.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # gateway.db.batch.MAX_BATCH is 64
SAMPLE_INTERVAL_S = 10.0

_PID_OF_FILE = re.compile(r"_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The gateway's metrics; the ``record_*`` methods are the only writers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_dir() is not None
        r = self.registry
        self.requests = Counter("gateway_http_requests", "HTTP requests answered.",
                                ("route", "method", "status"), registry=r)
        self.duration = Histogram("gateway_http_request_duration_seconds",
                                  "Time from the request to the end of the response.",
                                  ("route",), buckets=DURATION_BUCKETS, registry=r)
        self.operations = Counter("gateway_operations", "Ledger operations committed "
                                  "(replays of an idempotency key not counted).",
                                  ("kind", "partner"), registry=r)
        self.rejections = Counter("gateway_rate_limit_rejections",
                                  "Requests refused with 429 by the rate limit.", ("client",),
                                  registry=r)
        self.commit_batches = Histogram(
            "gateway_commit_batch_size", "Commands committed together by one group commit "
            "(SQLite: one COMMIT, one fsync each batch; gateway.db.batch).",
            buckets=BATCH_BUCKETS, registry=r)
        self._worker: dict[str, Gauge] = {}
        if self.multiprocess:
            for name, doc in (("resident_memory_bytes", "Resident memory of a worker."),
                              ("cpu_seconds", "CPU time a worker has used."),
                              ("open_fds", "Open file descriptors of a worker."),
                              ("start_time_seconds", "When a worker started (Unix time).")):
                self._worker[name] = Gauge(f"gateway_worker_{name}", doc, registry=r,
                                           multiprocess_mode="liveall")
        else:
            ProcessCollector(registry=r)
        # Labelled children cached by label values: ``labels()`` is a lock and a dict lookup
        # per call, this is one dict lookup on the hot path.
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method,
                                                                        str(status))
        child.inc()
        timer = self._duration_children.get(route)
        if timer is None:
            timer = self._duration_children[route] = self.duration.labels(route)
        timer.observe(seconds)

    def record_operation(self, kind: str, partner_id: str) -> None:
        """``LedgerContext.on_commit``: called after a command commits, not on replays."""
        self.operations.labels(kind, partner_id).inc()

    def record_commit_batch(self, commands: int) -> None:
        """Called by the group-commit writer thread after each durable COMMIT."""
        self.commit_batches.observe(commands)

    def record_rate_limited(self, client_id: str) -> None:
        self.rejections.labels(client_id).inc()

    def sample_process(self) -> None:
        """Refresh this worker's ``gateway_worker_*`` gauges (multiprocess mode only)."""
        if not self._worker:
            return
        names = {"process_resident_memory_bytes": "resident_memory_bytes",
                 "process_cpu_seconds": "cpu_seconds", "process_open_fds": "open_fds",
                 "process_start_time_seconds": "start_time_seconds"}
        for family in ProcessCollector(registry=None).collect():
            target = names.get(family.name)
            if target is not None and family.samples:
                self._worker[target].set(family.samples[0].value)

    async def sample_forever(self) -> None:
        while True:
            self.sample_process()
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    def worker_exited(self) -> None:
        directory = multiprocess_dir()
        if directory is not None:
            mp.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        _forget_dead_workers(directory)
        self.sample_process()
        merged = CollectorRegistry()
        mp.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def _forget_dead_workers(directory: str) -> None:
    """A worker killed without a clean shutdown left live gauges behind: drop them."""
    pids = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        found = _PID_OF_FILE.search(path)
        if found:
            pids.add(int(found.group(1)))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mp.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's
            pass


def metrics_endpoint(metrics: Metrics,
                     token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``; with ``token`` set, only ``Authorization: Bearer <token>`` may read."""
    expected = f"Bearer {token}".encode() if token else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse({"error": "metrics need the bearer token "
                                     "(GATEWAY_METRICS_TOKEN)"}, 401,
                                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return endpoint


class WorkerMetrics:
    """Counters of one ``gateway worker`` process (decision 030), in a registry of its own:
    the worker serves no HTTP API, so ``gateway worker --metrics-port`` exposes them with
    ``prometheus_client``'s own small server. Each worker is scraped separately."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter("gateway_worker_events_dispatched",
                              "Outbox events fanned out to their deliveries.",
                              registry=self.registry)
        self.created = Counter("gateway_worker_deliveries_created",
                               "Delivery rows made by dispatch (one per event and consumer).",
                               registry=self.registry)
        self.outcomes = Counter("gateway_worker_delivery_attempts",
                                "Delivery attempts by outcome: delivered, retry, dead, "
                                "superseded (another worker holds the claim now), released "
                                "(a claim given back unsent: its lease could not cover it).",
                                ("outcome",), registry=self.registry)

    def record_pass(self, events: int, created: int, outcomes: dict[str, int]) -> None:
        self.events.inc(events)
        self.created.inc(created)
        for outcome, count in outcomes.items():
            self.outcomes.labels(outcome).inc(count)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import start_http_server

        start_http_server(port, addr=host, registry=self.registry)
