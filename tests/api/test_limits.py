"""Every protective limit of ``gateway.settings.Limits``, at its edge: one request just over it is
refused with a message naming the limit, one just at it is served. Plus the production switches
(introspection, "Did you mean" hints), error masking, the per-client rate limit over HTTP, and
the GCRA arithmetic of ``gateway.limits`` with an injected clock.

Depth is probed at a lowered limit with real queries, because no valid query reaches the default
of 10 (the deepest is 6, which ``test_default_depth_admits_the_deepest_real_query`` pins)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, GraphQLSchema, GraphQLUnionType, get_named_type

from gateway.api import members as api_members
from gateway.api import points as api_points
from gateway.api.schema import build_schema
from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.ledger import service as ledger_service
from gateway.limits import Decision, InProcessRateLimiter
from gateway.settings import Limits, Settings
from tests.support.harness import NOW, Api, ledger_snapshot, make_gateway, partner_api

UNLIMITED_RATE = 1_000_000
DEFAULTS = Limits()


def limits(**changes: Any) -> Limits:
    return Limits(rate_limit_per_minute=UNLIMITED_RATE, **changes)


async def grocery(tmp_path: Path, **kwargs: Any) -> Api:
    return await partner_api(make_gateway(tmp_path, **kwargs), "grocery")


async def errors_of(api: Api, query: str, variables: dict[str, Any] | None = None) -> list[str]:
    response = await api.post(query, variables)
    assert response.status_code == 200, response.text
    return [error["message"] for error in response.json().get("errors", [])]


async def send(api: Api, content: bytes | AsyncIterator[bytes],
               content_type: str = "application/json") -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": content_type}
    async with api.http() as client:
        return await client.post("/graphql", content=content, headers=headers)


def error_body(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


# --- the defaults are the documented ones ---------------------------------------------------------

def test_every_default_is_in_the_documented_table() -> None:
    doc = Limits.__doc__ or ""
    for f in dataclasses.fields(Limits):
        default = f.default
        assert re.search(rf"^\s*{f.name}\s+{default}\s", doc, re.MULTILINE), (
            f"Limits.{f.name} = {default} is not in the Limits docstring table")


def test_resolver_caps_are_the_limits() -> None:
    """The page and list caps live as constants in the resolvers; keep them equal to Limits."""
    assert api_members.MAX_PAGE == DEFAULTS.max_page_size == 100
    assert api_points.MAX_LINES == DEFAULTS.max_list_items == 100


# --- depth ----------------------------------------------------------------------------------------

DEPTH_4 = '{ member(customerId: "c") { ... on Member { history { edges { node { id } } } } } }'
DEPTH_5 = ('{ member(customerId: "c") { ... on Member { history { edges { node {'
           ' amount { currency } } } } } } }')
DEPTH_6 = ('mutation { enrolCustomer(input: {customerId: "c"}) { ... on EnrolCustomerSuccess {'
           ' member { history { edges { node { amount { currency } } } } } } } }')


def synthetic(depth: int) -> str:
    """Nested unknown fields: depth is checked on the document, before the fields are known."""
    return "{ " + " ".join(f"f{i} {{" for i in range(depth)) + " leaf " + "}" * depth + " }"


async def test_query_depth(tmp_path: Path) -> None:
    api = await grocery(tmp_path, limits=limits(max_depth=4))
    assert await errors_of(api, DEPTH_4) == []
    assert await errors_of(api, DEPTH_5) == ["'anonymous' exceeds maximum operation depth of 4"]


def deepest(schema: GraphQLSchema, type_name: str, seen: frozenset[str] = frozenset()) -> int:
    """Nesting of the deepest selection the schema allows below ``type_name``; a cycle is
    infinite, and this test then asks for a decision about the depth limit."""
    if type_name in seen:
        return 10**6
    type_ = schema.type_map[type_name]
    children: list[str] = []
    if isinstance(type_, GraphQLUnionType):
        return max(deepest(schema, member.name, seen) for member in type_.types)
    if isinstance(type_, GraphQLObjectType):
        children = [get_named_type(f.type).name for f in type_.fields.values()]
    below = [1 + deepest(schema, child, seen | {type_name}) for child in children
             if isinstance(schema.type_map[child], (GraphQLObjectType, GraphQLUnionType))]
    return max(below, default=0)


async def test_default_depth_admits_the_deepest_real_query(tmp_path: Path) -> None:
    schema = build_schema()._schema
    assert max(deepest(schema, "Query"), deepest(schema, "Mutation")) == 6 < DEFAULTS.max_depth
    api = await grocery(tmp_path)
    assert await errors_of(api, DEPTH_6) == []
    at_limit = await errors_of(api, synthetic(DEFAULTS.max_depth))
    assert not any("depth" in message for message in at_limit), at_limit
    over = await errors_of(api, synthetic(DEFAULTS.max_depth + 1))
    assert "'anonymous' exceeds maximum operation depth of 10" in over


# --- tokens ---------------------------------------------------------------------------------------

def tokens(count: int) -> str:
    """``{ __typename }`` and comments: exactly ``count`` tokens, since a comment is one. (A
    thousand repeated fields would trip graphql-core's own field-comparison budget instead.)"""
    return "{ __typename }" + "\n# padding" * (count - 3)


async def test_token_count(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    too_many = ["Syntax Error: Document contains more than 2000 tokens. Parsing aborted."]
    assert await errors_of(api, tokens(DEFAULTS.max_tokens)) == []
    assert await errors_of(api, tokens(DEFAULTS.max_tokens + 1)) == too_many
    fields = "{ " + "__typename " * (DEFAULTS.max_tokens - 1) + "}"  # 2001 tokens of query
    assert await errors_of(api, fields) == too_many


# --- aliases --------------------------------------------------------------------------------------

def aliases(count: int, prefix: str = "a") -> str:
    return " ".join(f"{prefix}{i}: __typename" for i in range(count))


async def test_alias_count(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    assert await errors_of(api, "{ " + aliases(15) + " }") == []
    assert await errors_of(api, "{ " + aliases(16) + " }") == ["16 aliases found. Allowed: 15"]


async def test_alias_count_follows_fragments(tmp_path: Path) -> None:
    """A fragment's aliases count once per spread, nested fragments included."""
    api = await grocery(tmp_path)
    five = "fragment F on Query { " + aliases(5) + " }"
    assert await errors_of(api, "{ ...F ...F ...F } " + five) == []
    nested = "{ ...G ...G } fragment G on Query { ...F b: __typename } " + five
    assert await errors_of(api, nested) == []  # 2 x (5 + 1) = 12
    eight = "fragment F on Query { " + aliases(8) + " }"
    assert await errors_of(api, "{ ...F ...F } " + eight) == ["16 aliases found. Allowed: 15"]
    three_deep = "{ ...G ...G ...G } fragment G on Query { ...F } " + "fragment F on Query { " \
        + aliases(5) + " c: __typename }"
    assert await errors_of(api, three_deep) == ["18 aliases found. Allowed: 15"]


# --- request body size ----------------------------------------------------------------------------

ENROL = 'mutation { enrolCustomer(input: {customerId: "padded"}) { __typename } }'


def body_of(size: int) -> bytes:
    """A valid request of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    body = json.dumps({"query": ENROL}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


async def chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


async def test_body_size_by_content_length(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    before = ledger_snapshot(api.gateway)
    over = await send(api, body_of(DEFAULTS.max_body_bytes + 1))
    assert over.status_code == 413
    assert error_body(over) == {"message": "request body over 65536 bytes",
                                "extensions": {"code": "BODY_TOO_LARGE"}}
    assert ledger_snapshot(api.gateway) == before
    at_limit = await send(api, body_of(DEFAULTS.max_body_bytes))
    assert at_limit.status_code == 200
    assert at_limit.json() == {"data": {"enrolCustomer": {"__typename": "EnrolCustomerSuccess"}}}


async def test_body_size_of_a_chunked_body(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    before = ledger_snapshot(api.gateway)
    over = await send(api, chunks(body_of(DEFAULTS.max_body_bytes + 1)))
    assert "content-length" not in over.request.headers
    assert over.request.headers["transfer-encoding"] == "chunked"
    assert over.status_code == 413
    assert error_body(over)["extensions"] == {"code": "BODY_TOO_LARGE"}
    assert ledger_snapshot(api.gateway) == before
    at_limit = await send(api, chunks(body_of(DEFAULTS.max_body_bytes)))
    assert "content-length" not in at_limit.request.headers
    assert at_limit.status_code == 200
    assert at_limit.json() == {"data": {"enrolCustomer": {"__typename": "EnrolCustomerSuccess"}}}


# --- page size ------------------------------------------------------------------------------------

HISTORY = """query($first: Int!) { member(customerId: "g-1") { ... on Member {
  history(first: $first) { edges { cursor } pageInfo { hasNextPage } } } } }"""


async def test_page_size(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    await api.gql('mutation { enrolCustomer(input: {customerId: "g-1"}) { __typename } }')
    page = await api.gql(HISTORY, {"first": DEFAULTS.max_page_size})
    assert page == {"member": {"history": {"edges": [], "pageInfo": {"hasNextPage": False}}}}
    for first in (DEFAULTS.max_page_size + 1, 0):
        response = await api.post(HISTORY, {"first": first})
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert [e["message"] for e in body["errors"]] == ["first must be between 1 and 100"]
        # Refused before anything runs (gateway/api/pages.py): a request error, no path.
        assert "path" not in body["errors"][0]
        assert body["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": "first"}


# --- list inputs ----------------------------------------------------------------------------------

EARN = """mutation($lines: [LineItemInput!]!, $key: String!) { earnPoints(input: {
  customerId: "g-1", amount: {amountMinor: 120000, currency: "UAH"}, channel: STORE,
  purchaseId: $key, idempotencyKey: $key, lines: $lines}) {
  __typename ... on Error { code message field } } }"""


def lines(count: int) -> list[dict[str, Any]]:
    return [{"amountMinor": 1200, "category": "groceries"} for _ in range(count)]


async def test_list_input_size(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    await api.gql('mutation { enrolCustomer(input: {customerId: "g-1"}) { __typename } }')
    before = ledger_snapshot(api.gateway)
    over = await api.gql(EARN, {"lines": lines(DEFAULTS.max_list_items + 1), "key": "k-101"})
    assert over == {"earnPoints": {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                                   "message": "at most 100 lines per purchase",
                                   "field": "lines"}}
    assert ledger_snapshot(api.gateway) == before
    at_limit = await api.gql(EARN, {"lines": lines(DEFAULTS.max_list_items), "key": "k-100"})
    assert at_limit == {"earnPoints": {"__typename": "EarnPointsSuccess"}}


# --- batching -------------------------------------------------------------------------------------

BATCH = json.dumps([{"query": "{ __typename }"}, {"query": "{ a: __typename }"}]).encode()


async def test_batching_is_refused_by_default(tmp_path: Path) -> None:
    assert DEFAULTS.allow_batching is False
    api = await grocery(tmp_path)
    response = await send(api, BATCH)
    assert response.status_code == 400
    assert error_body(response) == {
        "message": "query batching is off: send one GraphQL operation per request, as a JSON "
                   "object, not an array",
        "extensions": {"code": "BAD_REQUEST"}}
    single = await send(api, json.dumps({"query": "{ __typename }"}).encode())
    assert single.json() == {"data": {"__typename": "Query"}}


async def test_batching_when_allowed(tmp_path: Path) -> None:
    api = await grocery(tmp_path, limits=limits(allow_batching=True, max_batch_operations=2))
    response = await send(api, BATCH)
    assert response.status_code == 200
    assert response.json() == [{"data": {"__typename": "Query"}}, {"data": {"a": "Query"}}]
    three = json.dumps([{"query": "{ __typename }"}] * 3).encode()
    too_many = await send(api, three)
    assert too_many.status_code == 400
    assert error_body(too_many)["message"] == "Too many operations"


# --- introspection and suggestions: on in development, off in production -------------------------

INTROSPECT = "{ __schema { queryType { name } } }"
TYPE_INTROSPECT = '{ __type(name: "Member") { name } }'


async def test_introspection_on_in_development(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    assert await api.gql(INTROSPECT) == {"__schema": {"queryType": {"name": "Query"}}}
    assert await api.gql(TYPE_INTROSPECT) == {"__type": {"name": "Member"}}


async def test_introspection_off_in_production(tmp_path: Path) -> None:
    api = await grocery(tmp_path, production=True)
    for query, field in ((INTROSPECT, "__schema"), (TYPE_INTROSPECT, "__type")):
        messages = await errors_of(api, query)
        assert messages[0] == ("GraphQL introspection has been disabled, but the requested "
                               f"query contained the field '{field}'."), messages
    assert await api.gql("{ __typename }") == {"__typename": "Query"}  # not introspection


PREVIEW = """query($channel: Channel!) { previewEarn(input: {customerId: "g-1",
  amount: {amountMinor: 100, currency: "UAH"}, channel: $channel, purchaseId: "p",
  idempotencyKey: "k"}) { __typename } }"""
TYPOS: list[tuple[str, dict[str, Any] | None, str]] = [
    ('{ membr(customerId: "x") { __typename } }', None,
     "Cannot query field 'membr' on type 'Query'. Did you mean 'member'?"),
    ('{ member(customerID: "x") { __typename } }', None,
     "Unknown argument 'customerID' on field 'Query.member'. Did you mean 'customerId'?"),
    (PREVIEW, {"channel": "STOR"},
     "Variable '$channel' has invalid value: Value 'STOR' does not exist in 'Channel' enum. "
     "Did you mean the enum value 'STORE'?"),
]


async def test_suggestions_on_in_development(tmp_path: Path) -> None:
    api = await grocery(tmp_path)
    for query, variables, message in TYPOS:
        assert message in await errors_of(api, query, variables)


async def test_suggestions_off_in_production(tmp_path: Path) -> None:
    api = await grocery(tmp_path, production=True)
    for query, variables, message in TYPOS:
        messages = await errors_of(api, query, variables)
        assert message.split(" Did you mean")[0] in messages, messages
        assert not any("Did you mean" in m or "STORE" in m for m in messages), messages


# --- unexpected exceptions are masked, expected GraphQL errors are not ----------------------------

PREVIEW_OK = """{ previewEarn(input: {customerId: "g-1", amount: {amountMinor: 100,
  currency: "UAH"}, channel: STORE, purchaseId: "p", idempotencyKey: "k"}) { __typename } }"""


async def test_unexpected_exception_is_masked_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("db password is hunter2")

    api = await grocery(tmp_path)
    monkeypatch.setattr(ledger_service, "preview_earn", explode)
    with caplog.at_level(logging.ERROR):
        response = await api.post(PREVIEW_OK)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert [(e["message"], e["path"]) for e in body["errors"]] == [
        ("Unexpected error.", ["previewEarn"])]
    for leak in ("hunter2", "RuntimeError", "Traceback", "explode", ".py"):
        assert leak not in response.text
    assert "hunter2" in caplog.text  # the operator still sees it


async def test_a_bad_variable_is_not_masked(tmp_path: Path) -> None:
    """A wrong enum value in a variable wraps a KeyError inside graphql-core; it used to be
    masked as "Unexpected error." (found by this suite)."""
    api = await grocery(tmp_path)
    assert await errors_of(api, PREVIEW, {"channel": 5}) == [
        "Variable '$channel' has invalid value: Enum 'Channel' cannot represent non-string "
        "value: 5."]


# --- per-client rate limit ------------------------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_per_client(tmp_path: Path) -> None:
    time = FakeTime()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
                        issuer="https://gateway.test", limits=Limits(rate_limit_per_minute=2))
    gateway = build(settings, clock=FixedClock(NOW),
                    limiter=InProcessRateLimiter(2, burst=2, now=time))
    first = await partner_api(gateway, "grocery")
    other = await partner_api(gateway, "electronics")
    assert (await first.post("{ __typename }")).status_code == 200
    assert (await first.post("{ __typename }")).status_code == 200

    limited = await first.post("{ __typename }")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "30"  # one request per 30 s, burst used up
    assert error_body(limited) == {
        "message": "rate limit reached for this client; retry after 30 s",
        "extensions": {"code": "RATE_LIMITED"}}
    await first.fetch_token()  # a new token is the same client: still limited
    assert (await first.post("{ __typename }")).status_code == 429

    assert (await other.post("{ __typename }")).json() == {"data": {"__typename": "Query"}}

    time.now += 29.5
    almost = await first.post("{ __typename }")
    assert (almost.status_code, almost.headers["retry-after"]) == (429, "1")
    time.now += 0.5
    assert (await first.post("{ __typename }")).status_code == 200


# --- GCRA arithmetic (gateway.limits), with an injected clock ------------------------------------

ALLOW = Decision(True, 0)


def deny(seconds: int) -> Decision:
    return Decision(False, seconds)


def test_gcra_burst_then_one_per_interval() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(60, burst=3, now=time)  # one per second, three at once
    assert [limiter.hit("k") for _ in range(4)] == [ALLOW, ALLOW, ALLOW, deny(1)]
    time.now += 0.5
    assert limiter.hit("k") == deny(1)  # 0.5 s still to wait, rounded up
    time.now += 0.5
    assert [limiter.hit("k"), limiter.hit("k")] == [ALLOW, deny(1)]
    time.now += 10  # idle time refills the burst, never beyond it
    assert [limiter.hit("k") for _ in range(4)] == [ALLOW, ALLOW, ALLOW, deny(1)]


def test_gcra_denials_do_not_push_the_client_further_back() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(60, burst=1, now=time)
    assert limiter.hit("k") == ALLOW
    assert [limiter.hit("k") for _ in range(50)] == [deny(1)] * 50
    time.now += 1
    assert limiter.hit("k") == ALLOW


def test_gcra_retry_after_is_whole_seconds_rounded_up() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(1, burst=1, now=time)  # one a minute
    assert limiter.hit("k") == ALLOW
    assert limiter.hit("k") == deny(60)
    time.now += 0.25
    assert limiter.hit("k") == deny(60)  # 59.75 s rounds up
    time.now += 59.0
    assert limiter.hit("k") == deny(1)  # 0.75 s rounds up to 1, never 0
    time.now += 0.75
    assert limiter.hit("k") == ALLOW


def test_gcra_cost_weighted() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(60, burst=5, now=time)
    assert limiter.hit("k", cost=5) == ALLOW
    assert limiter.hit("k", cost=1) == deny(1)
    time.now += 3
    assert limiter.hit("k", cost=4) == deny(1)  # needs 4 s of credit, has 3
    assert limiter.hit("k", cost=3) == ALLOW
    time.now += 5
    assert limiter.hit("k", cost=5) == ALLOW  # the whole burst again after 5 s idle


def assert_retry_after_is_honest(limiter: InProcessRateLimiter, time: FakeTime,
                                 cost: int) -> None:
    """Denied with ``Retry-After: n``: after n seconds of silence the same request is let in."""
    decision = limiter.hit("k", cost=cost)
    while decision.allowed:
        decision = limiter.hit("k", cost=cost)
    assert decision.retry_after_s > 0
    time.now += decision.retry_after_s
    assert limiter.hit("k", cost=cost) == ALLOW


def test_gcra_retry_after_is_honest() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(7, burst=3, now=time)  # an interval of 8.571... s
    for cost in (1, 2, 3, 1, 3):
        assert_retry_after_is_honest(limiter, time, cost)


def test_gcra_cost_above_the_burst() -> None:
    time = FakeTime()
    assert_retry_after_is_honest(InProcessRateLimiter(60, burst=5, now=time), time, cost=6)


def test_gcra_keys_are_independent() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(60, burst=1, now=time)
    assert [limiter.hit("a"), limiter.hit("a"), limiter.hit("b")] == [ALLOW, deny(1), ALLOW]


def test_gcra_default_burst_is_a_tenth_of_a_minute() -> None:
    time = FakeTime()
    limiter = InProcessRateLimiter(120, now=time)  # a 0.5 s interval, exact in binary
    assert [limiter.hit("k") for _ in range(12)] == [ALLOW] * 12  # was 20, a sixth
    assert limiter.hit("k") == deny(1)
    small = InProcessRateLimiter(5, now=time)  # 5 // 10 == 0, still at least one
    assert [small.hit("s"), small.hit("s")] == [ALLOW, deny(12)]


def test_gcra_default_limit_gives_the_whole_burst() -> None:
    limiter = InProcessRateLimiter(DEFAULTS.rate_limit_per_minute, now=FakeTime())
    assert [limiter.hit("k") for _ in range(60)] == [ALLOW] * 60  # the documented 60
    assert limiter.hit("k").allowed is False


def test_gcra_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="per_minute must be positive"):
        InProcessRateLimiter(0)


async def test_configured_page_and_list_caps_are_enforced(tmp_path: Path) -> None:
    """The caps come from Settings.limits, not from constants: lower them and they bite."""
    from tests.support.harness import make_gateway, partner_api

    gw = make_gateway(tmp_path, limits=Limits(max_page_size=5, max_list_items=3,
                                              rate_limit_per_minute=1_000_000))
    api = await partner_api(gw, "grocery")
    await api.gql('mutation { enrolCustomer(input: {customerId: "c-1"}) { __typename } }')
    history = 'query($n: Int!) { member(customerId: "c-1") { ... on Member { '
    history += "history(first: $n) { edges { cursor } } } } }"
    assert (await api.gql(history, {"n": 5}))["member"]["history"]["edges"] == []
    body = (await api.post(history, {"n": 6})).json()
    assert body["errors"][0]["message"] == "first must be between 1 and 5"
    earn = """mutation($lines: [LineItemInput!]!) { earnPoints(input: {customerId: "c-1",
      amount: {amountMinor: 400, currency: "UAH"}, channel: STORE, purchaseId: "p-1",
      idempotencyKey: "k-1", lines: $lines}) { __typename ... on Error { message field } } }"""
    four = [{"amountMinor": 100}] * 4
    result = (await api.gql(earn, {"lines": four}))["earnPoints"]
    assert result == {"__typename": "InvalidInputError",
                      "message": "at most 3 lines per purchase", "field": "lines"}
