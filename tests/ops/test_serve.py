"""``gateway serve --workers 2`` as a real process tree on this run's backend.

What only real processes show: both workers answer and their counters add up in ``/metrics``
(prometheus_client multiprocess mode); the access lines on stderr are JSON and carry the
request id the client sent or the one the gateway made up; and SIGTERM lets a request already
in flight finish before the server exits 0. The "slow request" needs no hook in the code: the
client sends the headers and half of the body, and the rest only after the signal, so the
request is in flight (its worker is reading the body) when SIGTERM arrives."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import harness, process, servers

# Timing-sensitive: dev.py test runs it alone, after the side-by-side passes.
pytestmark = pytest.mark.serial

EARN = ('mutation { earnPoints(input: {customerId: "c-9", amount: {amountMinor: 120000, '
        'currency: "UAH"}, channel: STORE, purchaseId: "%s", idempotencyKey: "%s"}) '
        '{ ... on EarnPointsSuccess { points } ... on Error { code } } }')
ENROL = ('mutation { enrolCustomer(input: {customerId: "c-9"}) '
         '{ ... on EnrolCustomerSuccess { created } } }')
EARNS = 5


@pytest.fixture
def server(tmp_path: Path) -> Iterator[process.GatewayProcess]:
    env = {"DATABASE_URL": harness.database_url(tmp_path),
           "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000", "GATEWAY_RATE_LIMIT_BURST": "100000"}
    if harness.USE_REDIS:
        env.update(REDIS_URL=servers.redis().url, GATEWAY_REDIS_PREFIX=f"ops{os.getpid()}:")
    with process.running(env, ["--demo", "--workers", "2"],
                         log_path=tmp_path / "server.log") as running:
        yield running


def call(base: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(base + path, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def token(base: str) -> str:
    status, _, body = call(base, "/oauth/token", b"grant_type=client_credentials", {
        "Authorization": "Basic Z3JvY2VyeS1kZW1vOmdyb2NlcnktZGVtby1zZWNyZXQ=",  # grocery-demo
        "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    access: str = json.loads(body)["access_token"]
    return access


def graphql(base: str, bearer: str, query: str,
            request_id: str | None = None) -> tuple[dict[str, Any], str]:
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    status, got, body = call(base, "/graphql", json.dumps({"query": query}).encode(), headers)
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer, {k.lower(): v for k, v in got.items()}["x-request-id"]


def metric(text: str, name: str, **labels: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()))


def json_lines(server: process.GatewayProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def test_two_workers_health_metrics_and_logs(server: process.GatewayProcess) -> None:
    base = server.base_url
    assert call(base, "/healthz")[::2] == (200, b'{"status":"ok"}')
    status, _, body = call(base, "/readyz")
    assert (status, json.loads(body)["status"]) == (200, "ready")

    bearer = token(base)
    assert graphql(base, bearer, ENROL)[0] == {"data": {"enrolCustomer": {"created": True}}}
    sent_ids = [f"ops-earn-{n}" for n in range(EARNS)]
    for n, request_id in enumerate(sent_ids):
        answer, echoed = graphql(base, bearer, EARN % (f"r-{n}", f"k-{n}"), request_id)
        assert answer == {"data": {"earnPoints": {"points": 120}}}
        assert echoed == request_id
    replay, generated = graphql(base, bearer, EARN % ("r-0", "k-0"))  # a replay: not counted
    assert replay == {"data": {"earnPoints": {"points": 120}}}
    assert len(generated) == 32 and generated not in sent_ids

    # Each worker scrapes the files of both: ask several times, the answer is the same sum.
    pids = set()
    for _ in range(4):
        status, _, raw = call(base, "/metrics")
        assert status == 200
        text = raw.decode()
        assert metric(text, "gateway_operations_total", kind="earn", partner="grocery") == EARNS
        assert metric(text, "gateway_http_requests_total", route="/graphql", method="POST",
                      status="200") == EARNS + 2
        assert metric(text, "gateway_http_request_duration_seconds_count",
                      route="/graphql") == EARNS + 2
        assert metric(text, "gateway_http_request_duration_seconds_bucket", route="/graphql",
                      le="5.0") <= EARNS + 2
        assert metric(text, "gateway_http_requests_total", route="/oauth/token") == 1
        pids |= {sample.labels["pid"] for family in text_string_to_metric_families(text)
                 for sample in family.samples
                 if sample.name == "gateway_worker_resident_memory_bytes"}
    assert len(pids) >= 1

    deadline = time.monotonic() + 10  # stderr is a pipe to a file: allow it to be flushed
    while True:
        lines = json_lines(server)
        access = {line["request_id"]: line for line in lines
                  if line.get("logger") == "gateway.access"}
        if all(rid in access for rid in [*sent_ids, generated]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for rid in [*sent_ids, generated]:
        line = access[rid]
        assert (line["level"], line["method"], line["route"], line["status"],
                line["client_id"], line["partner_id"]) == (
            "info", "POST", "/graphql", 200, "grocery-demo", "grocery"), line
        assert line["duration_ms"] > 0
    assert started_workers(server) == 2


def started_workers(server: process.GatewayProcess, *, within_s: float = 30.0) -> int:
    """Worker processes that logged their start. /healthz answers as soon as one worker is up;
    on a loaded machine the second may start seconds later, so wait for it (bounded)."""
    deadline = time.monotonic() + within_s
    while True:
        started = {line["msg"] for line in json_lines(server)
                   if line["msg"].startswith("Started server process")}
        if len(started) >= 2 or time.monotonic() > deadline:
            return len(started)
        time.sleep(0.1)


def test_sigterm_lets_the_request_in_flight_finish(server: process.GatewayProcess) -> None:
    base = server.base_url
    bearer = token(base)
    graphql(base, bearer, ENROL)
    body = json.dumps({"query": EARN % ("slow", "slow")}).encode()
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\n"
             f"Content-Type: application/json\r\nX-Request-ID: in-flight\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:20])
        time.sleep(0.5)  # ordering only: let the worker start reading the body
        os.killpg(server.pid, signal.SIGTERM)
        time.sleep(1.0)
        assert server.alive(), "the server exited with a request in flight"
        sock.sendall(body[20:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response
    assert b"x-request-id: in-flight" in head.lower()
    assert json.loads(payload) == {"data": {"earnPoints": {"points": 120}}}
    assert server.process.wait(timeout=process.EXIT_TIMEOUT_S) == 0
    assert "Traceback" not in server.output()


def test_workers_serve_on_httptools_and_uvloop(server: process.GatewayProcess) -> None:
    """The start banner names the stack, and every worker really runs it: each has uvloop's and
    httptools' C extensions mapped (the ASGI tests elsewhere run the app in process, so only
    the served processes can show this)."""
    assert "HTTP stack:    uvicorn " in server.output()
    banner = next(line for line in server.output().splitlines()
                  if line.startswith("HTTP stack:"))
    assert "httptools" in banner and "uvloop" in banner and "TCP_NODELAY" in banner, banner
    assert started_workers(server) == 2
    # The workers are multiprocessing's spawned children (the group also holds its resource
    # tracker, which serves nothing).
    workers = [pid for pid in process.group_members(server.pid)
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 2, workers
    for pid in workers:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "/uvloop/loop." in maps, f"worker {pid} has no uvloop loaded"
        assert "/httptools/parser/parser." in maps, f"worker {pid} has no httptools parser"
