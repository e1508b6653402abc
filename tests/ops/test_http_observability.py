"""Request ids, access lines, metrics and readiness on the real app over ASGI (no server process).

Every answer carries ``X-Request-ID`` (the client's when well formed, else a generated one),
401, 413 and 429 included; the access line and any other log line of the request carry the same
id; ``/metrics`` counts requests by route template, operations by kind and partner (not replays)
and 429s by client; ``/readyz`` names what is down."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.observability.logs import REQUEST_ID, JsonFormatter, request_id_from
from gateway.settings import Limits
from tests.support import harness
from tests.support.harness import NOW, Api, make_gateway, partner_api, track

EARN = """mutation($key: String!) { earnPoints(input: {customerId: "c-1",
  amount: {amountMinor: 120000, currency: "UAH"}, channel: STORE, purchaseId: $key,
  idempotencyKey: $key}) { ... on EarnPointsSuccess { points } ... on Error { code } } }"""
ENROL = ('mutation { enrolCustomer(input: {customerId: "c-1"}) '
         '{ ... on EnrolCustomerSuccess { created } } }')
GENERATED = re.compile(r"[0-9a-f]{32}")


class Captured(logging.Handler):
    """Every record, formatted as the production JSON formatter would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of samples called ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def get(api: Api, path: str, **headers: str) -> httpx.Response:
    async with api.http() as client:
        return await client.get(path, headers=headers)


def test_request_id_accepts_well_formed_ids_only() -> None:
    assert request_id_from(b"abc.DEF_1-2") == "abc.DEF_1-2"
    assert request_id_from(b"x" * 128) == "x" * 128
    for bad in (b"x" * 129, b"has space", b'quote"', b"new\nline", b"", None, b"\xc3\xa9"):
        generated = request_id_from(bad)
        assert GENERATED.fullmatch(generated), (bad, generated)
    assert request_id_from(None) != request_id_from(None)


async def test_request_id_echoed_or_generated_on_every_status(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path, limits=Limits(rate_limit_per_minute=60,
                                                   rate_limit_burst=1, max_body_bytes=200))
    api = await partner_api(gateway, "grocery")
    async with api.http() as client:
        ok = await client.get("/healthz", headers={"X-Request-ID": "lb-probe.7"})
        assert (ok.status_code, ok.headers["x-request-id"]) == (200, "lb-probe.7")
        bad = await client.get("/healthz", headers={"X-Request-ID": "two words"})
        assert GENERATED.fullmatch(bad.headers["x-request-id"])
        none = await client.get("/healthz")
        assert GENERATED.fullmatch(none.headers["x-request-id"])

        unauthorized = await client.post("/graphql", json={"query": "{ __typename }"},
                                         headers={"X-Request-ID": "r-401"})
        assert (unauthorized.status_code, unauthorized.headers["x-request-id"]) == (401, "r-401")
        auth = {"Authorization": f"Bearer {api.token}"}
        too_large = await client.post("/graphql", content=b"{" + b" " * 400 + b"}",
                                      headers={**auth, "X-Request-ID": "r-413",
                                               "Content-Type": "application/json"})
        assert (too_large.status_code, too_large.headers["x-request-id"]) == (413, "r-413")
        first = await client.post("/graphql", json={"query": ENROL}, headers=auth)
        assert first.status_code == 200
        limited = await client.post("/graphql", json={"query": ENROL},
                                    headers={**auth, "X-Request-ID": "r-429"})
        assert (limited.status_code, limited.headers["x-request-id"]) == (429, "r-429")
        missing = await client.get("/no/such/page", headers={"X-Request-ID": "r-404"})
        assert (missing.status_code, missing.headers["x-request-id"]) == (404, "r-404")

    text = gateway.metrics.render().decode()
    assert metric(text, "gateway_rate_limit_rejections_total", client=api.client_id) == 1
    assert metric(text, "gateway_http_requests_total", route="/graphql", status="429") == 1
    assert metric(text, "gateway_http_requests_total", route="/graphql", status="413") == 1
    assert metric(text, "gateway_http_requests_total", route="/graphql", status="401") == 1
    # a path no route serves is one label, never the raw path
    assert metric(text, "gateway_http_requests_total", route="unmatched", status="404") == 1
    assert "/no/such/page" not in text


async def test_access_line_and_inner_log_lines_carry_the_request_id(
        tmp_path: Path, logs: Captured) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    api.extra_headers["X-Request-ID"] = "order-77"
    inner = logging.getLogger("gateway.test.inner")

    def on_commit(kind: str, partner_id: str) -> None:  # logs from inside the request
        inner.info("committed %s", kind)
        gateway.metrics.record_operation(kind, partner_id)

    gateway.services.ledger.on_commit = on_commit
    await api.gql(ENROL)
    await api.gql(EARN, {"key": "k-1"})

    access = [line for line in logs.lines if line["logger"] == "gateway.access"
              and line["request_id"] == "order-77"]
    assert len(access) == 2, logs.lines
    line = access[-1]
    assert {k: line[k] for k in ("level", "method", "route", "status", "client_id",
                                 "partner_id")} == {
        "level": "info", "method": "POST", "route": "/graphql", "status": 200,
        "client_id": api.client_id, "partner_id": "grocery"}
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert isinstance(line["ts"], str) and line["ts"].endswith("+00:00")
    committed = [line for line in logs.lines if line["logger"] == "gateway.test.inner"]
    assert [(c["msg"], c["request_id"]) for c in committed] == [("committed earn", "order-77")]
    assert REQUEST_ID.get() is None  # reset once the request is over


async def test_operations_counted_once_per_commit_not_on_replay(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    await api.gql(ENROL)
    for key in ("k-1", "k-2", "k-3", "k-1", "k-2"):  # two replays
        assert (await api.gql(EARN, {"key": key}))["earnPoints"] == {"points": 120}
    response = await get(api, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "gateway_operations_total", kind="earn", partner="grocery") == 3
    assert metric(text, "gateway_http_requests_total", route="/graphql", method="POST",
                  status="200") == 6
    assert metric(text, "gateway_http_request_duration_seconds_count", route="/graphql") == 6
    assert metric(text, "gateway_http_request_duration_seconds_bucket", route="/graphql",
                  le="+Inf") == 6
    assert metric(text, "gateway_http_request_duration_seconds_bucket", route="/graphql",
                  le="0.001") <= 6
    assert metric(text, "process_resident_memory_bytes") > 0  # process metrics


async def test_metrics_token(tmp_path: Path) -> None:
    settings = replace(harness.test_settings(tmp_path), metrics_token="s3cret")
    gateway = build(settings, clock=FixedClock(NOW))
    track(gateway.services.engine)
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert "gateway_http_requests_total" in right.text
        assert (await client.get("/healthz")).status_code == 200  # never behind the token


async def test_group_commit_batch_sizes_are_exported(tmp_path: Path) -> None:
    """/metrics counts every command the SQLite group-commit writer committed, in batches; on
    PostgreSQL (no group commit) the histogram stays empty."""
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    await api.gql(ENROL)
    for key in ("b-1", "b-2", "b-3", "b-1"):  # the replay also runs in a batch (its read)
        assert (await api.gql(EARN, {"key": key}))["earnPoints"] == {"points": 120}
    text = (await get(api, "/metrics")).text
    batches = metric(text, "gateway_commit_batch_size_count")
    commands = metric(text, "gateway_commit_batch_size_sum")
    if gateway.services.engine.dialect.name == "sqlite":
        assert commands >= 4 and 1 <= batches <= commands
    else:
        assert batches == commands == 0


async def test_request_counted_before_the_last_byte_is_sent() -> None:
    """A client that has read its answer and then scrapes ``/metrics`` (on any worker of a
    multi-process server) finds its request counted: the count is taken before the final body
    message goes out, not after the app returns (CI once saw 6 of 7 requests counted)."""
    from gateway.observability.metrics import Metrics
    from gateway.observability.middleware import ObservabilityMiddleware

    metrics = Metrics()

    def counted() -> float:
        return sum(s.value for f in text_string_to_metric_families(metrics.render().decode())
                   for s in f.samples if s.name == "gateway_http_requests_total"
                   and s.labels.get("route") == "/x")

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"a", "more_body": True})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"b"})  # type: ignore[operator]

    seen: list[tuple[bool, float]] = []

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            seen.append((bool(message.get("more_body")), counted()))

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    middleware = ObservabilityMiddleware(app, metrics=metrics, routes=lambda path: path)  # type: ignore[arg-type]
    await middleware({"type": "http", "method": "GET", "path": "/x", "headers": []},
                     receive, send)  # type: ignore[arg-type]
    assert seen == [(True, 0.0), (False, 1.0)]
    assert counted() == 1.0  # and once only


async def test_an_error_after_the_whole_answer_keeps_the_status_it_carried(
        logs: Captured) -> None:
    """A background task that fails after the response went out: the error is logged, and the
    access line says the 200 the client got, as the request count does."""
    from gateway.observability.metrics import Metrics
    from gateway.observability.middleware import ObservabilityMiddleware

    metrics = Metrics()

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"done"})  # type: ignore[operator]
        raise RuntimeError("the background task failed")

    async def send(message: dict[str, object]) -> None:
        return None

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    middleware = ObservabilityMiddleware(app, metrics=metrics, routes=lambda path: path)  # type: ignore[arg-type]
    await middleware({"type": "http", "method": "POST", "path": "/y", "headers": []},
                     receive, send)  # type: ignore[arg-type]
    counted = {s.labels["status"]: s.value
               for f in text_string_to_metric_families(metrics.render().decode())
               for s in f.samples if s.name == "gateway_http_requests_total"
               and s.labels.get("route") == "/y"}
    assert counted == {"200": 1.0}
    access = [line for line in logs.lines if line.get("logger") == "gateway.access"]
    assert [(line["route"], line["status"]) for line in access] == [("/y", 200)]
    assert any("the background task failed" in str(line.get("exc_info", line))
               for line in logs.lines if line.get("level") == "error")
