"""The client side of the crash test: a seeded stream of earns and redeems sent from threads,
what became of each request, and the SIGKILL of the server while requests are in flight.

An *acknowledged* request got a typed GraphQL result (a success or a typed error such as
``InsufficientPointsError``, both final). Anything else (a reset or refused connection, a
timeout, a 5xx or 429, a top-level "Unexpected error.") leaves it unacknowledged: the client
must retry it with the same idempotency key."""

from __future__ import annotations

import itertools
import json
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

from gateway.core.clock import SystemClock
from gateway.db import tables as t
from gateway.db.engine import make_engine
from gateway.members import consent
from tests.support import process

R = TypeVar("R")

MEMBERS = 20
THREADS = 16
KILL_AFTER_ACKS = 150
LOST_ANSWERS = 4  # earns sent first whose answers are never read: committed, unacknowledged
LOAD_TIMEOUT_S = 60.0
RETRY_DEADLINE_S = 60.0
TIMEOUT = httpx.Timeout(10.0, connect=2.0)
PARTNERS = {"grocery": "UAH", "electronics": "EUR"}

RESULT_FIELDS = "__typename ... on Error { code message field }"
EARN = f"""mutation Earn($input: EarnPointsInput!) {{ earnPoints(input: $input) {{
  {RESULT_FIELDS} ... on EarnPointsSuccess {{ operationId points ruleVersion explanation
  debtRepaid available pending recordedAt }} }} }}"""
REDEEM = f"""mutation Redeem($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{
  {RESULT_FIELDS} ... on RedeemPointsSuccess {{ operationId points value {{ amountMinor currency }}
  ruleVersion available }} }} }}"""
ENROL = """mutation Enrol($id: ID!) { enrolCustomer(input: {customerId: $id}) {
  __typename ... on EnrolCustomerSuccess { member { memberReference } } } }"""
LINK = """mutation Link($id: ID!, $code: String!) { linkCustomer(input: {customerId: $id,
  linkCode: $code}) { __typename } }"""
SUCCESS = {"earnPoints": "EarnPointsSuccess", "redeemPoints": "RedeemPointsSuccess"}


class Unacknowledged(Exception):
    """No definitive answer: the connection failed, timed out or was reset, or the answer was
    not a typed GraphQL result (5xx, 429, a top-level error)."""


@dataclass(frozen=True)
class Request:
    key: str
    partner: str
    member: int  # index into the enrolled members
    mutation: str  # "earnPoints" | "redeemPoints"
    variables: dict[str, Any]

    @property
    def query(self) -> str:
        return EARN if self.mutation == "earnPoints" else REDEEM


@dataclass
class Outcome:
    request: Request
    started_at: float
    first: dict[str, Any] | None = None  # the definitive answer during the load, if any
    failure: str = ""
    lost: bool = False  # sent by ``lost_answer``: processed, but the answer was never read
    final: dict[str, Any] | None = None  # the definitive answer, from the load or a retry
    retries: int = 0

    @property
    def succeeded(self) -> bool:
        return self.final is not None and self.final["__typename"] == SUCCESS[
            self.request.mutation]


@dataclass
class Session:
    """The demo partners' tokens against one server process."""

    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def connect(cls, base_url: str) -> Session:
        session = cls(base_url)
        with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
            for partner in PARTNERS:
                response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                       auth=(f"{partner}-demo", f"{partner}-demo-secret"))
                assert response.status_code == 200, response.text
                session.tokens[partner] = response.json()["access_token"]
        return session

    def send(self, client: httpx.Client, request: Request) -> dict[str, Any]:
        return self.call(client, request.partner, request.query, request.variables)

    def call(self, client: httpx.Client, partner: str, query: str,
             variables: dict[str, Any]) -> dict[str, Any]:
        """The mutation's typed result, or ``Unacknowledged``."""
        try:
            response = client.post(f"{self.base_url}/graphql",
                                   json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Bearer {self.tokens[partner]}"})
        except httpx.TransportError as exc:
            raise Unacknowledged(type(exc).__name__) from exc
        if response.status_code != 200:
            raise Unacknowledged(f"HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        data = body.get("data") or {}
        if body.get("errors") or len(data) != 1 or not next(iter(data.values())):
            raise Unacknowledged(f"no typed result: {json.dumps(body)[:300]}")
        result: dict[str, Any] = next(iter(data.values()))
        return result


def plan(rng: random.Random, run: str, *, earn_share: float = 0.55) -> Iterator[Request]:
    """A seeded mix of earns and redeems at two partners over the members: redeems are big
    enough that some meet an empty wallet (a definitive refusal, never recorded)."""
    for n in itertools.count():
        member, partner = rng.randrange(MEMBERS), rng.choice(list(PARTNERS))
        key = f"{run}-{n}"
        customer = f"{partner[0]}-{member}"
        if n < LOST_ANSWERS or rng.random() < earn_share:
            amount = rng.randrange(20_000, 200_000) if partner == "grocery" else rng.randrange(
                5_000, 30_000)
            yield Request(key, partner, member, "earnPoints", {"input": {
                "customerId": customer, "channel": "STORE", "purchaseId": f"p-{key}",
                "idempotencyKey": key,
                "amount": {"amountMinor": amount, "currency": PARTNERS[partner]}}})
        else:
            points = rng.randrange(50, 250) if partner == "grocery" else rng.randrange(100, 400)
            yield Request(key, partner, member, "redeemPoints", {"input": {
                "customerId": customer, "points": points, "idempotencyKey": key,
                "basketAmount": {"amountMinor": 1_000_000, "currency": PARTNERS[partner]}}})


def enrol_members(session: Session, database_url: str) -> list[str]:
    """Enrol customer g-N at grocery and link e-N at electronics to the same member, with a
    link code the member makes (straight in the server's database, as the member API would)."""
    members = []
    engine = make_engine(database_url)
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            for n in range(MEMBERS):
                enrolled = session.call(client, "grocery", ENROL, {"id": f"g-{n}"})
                assert enrolled["__typename"] == "EnrolCustomerSuccess", enrolled
                with engine.connect() as conn:
                    member_id = str(conn.execute(select(t.linked_accounts.c.member_id).where(
                        t.linked_accounts.c.partner_id == "grocery",
                        t.linked_accounts.c.customer_id == f"g-{n}")).scalar_one())
                code = consent.create_link_code(engine, SystemClock(), member_id).code
                linked = session.call(client, "electronics", LINK, {"id": f"e-{n}",
                                                                    "code": code})
                assert linked["__typename"] == "LinkCustomerSuccess", linked
                members.append(member_id)
    finally:
        engine.dispose()
    return members


def lost_answer(session: Session, request: Request) -> socket.socket:
    """Send ``request`` on a raw connection and never read the answer: the server runs it to
    the end (the connection stays open) but the client never learns the outcome, as when an
    answer is lost on the way back. The caller closes the socket after the kill."""
    host, port = session.base_url.removeprefix("http://").split(":")
    body = json.dumps({"query": request.query, "variables": request.variables}).encode()
    head = (f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {session.tokens[request.partner]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(head.encode() + body)
    return sock


@dataclass
class Load:
    """Threads sending the plan until stopped; every sent request leaves an ``Outcome``."""

    session: Session
    requests: Iterator[Request]
    outcomes: list[Outcome] = field(default_factory=list)
    acked: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while not self.stop.is_set():
                with self._lock:
                    outcome = Outcome(next(self.requests), time.monotonic())
                    self.outcomes.append(outcome)
                try:
                    answer = self.session.send(client, outcome.request)
                except Unacknowledged as exc:
                    outcome.failure = str(exc)
                    continue
                outcome.first = outcome.final = answer
                with self._lock:
                    self.acked += 1


def kill_mid_load(server: process.GatewayProcess, session: Session,
                  requests: Iterator[Request], *,
                  threads: int = THREADS) -> tuple[list[Outcome], float]:
    """Lose the answers of a few earns, run the load from ``threads`` threads until
    ``KILL_AFTER_ACKS`` answers, stop sending, SIGKILL the server's process group with
    requests in flight."""
    load = Load(session, requests)
    sockets = []
    for request in itertools.islice(load.requests, LOST_ANSWERS):
        load.outcomes.append(Outcome(request, time.monotonic(), lost=True,
                                     failure="answer never read"))
        sockets.append(lost_answer(session, request))
    senders = [threading.Thread(target=load.worker, daemon=True) for _ in range(threads)]
    for thread in senders:
        thread.start()
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while load.acked < KILL_AFTER_ACKS:
        assert time.monotonic() < deadline, (
            f"only {load.acked} answers in {LOAD_TIMEOUT_S} s:\n{server.output()}")
        assert server.alive(), f"the server died on its own:\n{server.output()}"
        time.sleep(0.001)
    load.stop.set()  # no new request after this; those already sent stay in flight
    killed_at = time.monotonic()
    code = server.kill(signal.SIGKILL)
    for thread in senders:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a load thread hung after the kill"
    for sock in sockets:
        sock.close()
    assert code == -signal.SIGKILL, f"the server exited with {code} before the SIGKILL"
    return load.outcomes, killed_at


def retry_until_definitive(session: Session, client: httpx.Client, outcome: Outcome) -> None:
    deadline = time.monotonic() + RETRY_DEADLINE_S
    while True:
        outcome.retries += 1
        try:
            outcome.final = session.send(client, outcome.request)
            return
        except Unacknowledged as exc:
            assert time.monotonic() < deadline, f"{outcome.request.key} never answered: {exc}"
            time.sleep(0.1)


def replay(session: Session, client: httpx.Client, outcome: Outcome) -> dict[str, Any]:
    try:
        return session.send(client, outcome.request)
    except Unacknowledged as exc:
        raise AssertionError(f"{outcome.request.key}, answered {outcome.final}, got no answer "
                             f"when re-sent: {exc}") from exc


def in_parallel(items: list[Outcome], each: Callable[[httpx.Client, Outcome], R]) -> list[R]:
    """``each(client, item)`` for every item, from ``THREADS`` threads with a client each;
    results in the order of ``items``."""
    chunks = [items[n::THREADS] for n in range(THREADS)]

    def run(chunk: list[Outcome]) -> list[R]:
        with httpx.Client(timeout=TIMEOUT) as client:
            return [each(client, item) for item in chunk]

    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(run, chunks))
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    for n, chunk_results in enumerate(done):
        results[n::THREADS] = chunk_results
    return results


