"""Webhook subscriptions through the partner API (scope ``webhooks:manage``), the worked example
of docs/webhooks.md, on this run's backend with a real receiver: the grocery subscribes to
``points.*``, an earn of 1,200.00 UAH (120 points) is delivered signed; the receiver is down
(500) for a day so the delivery goes dead after 33 attempts; ``webhookDeliveries`` shows it;
``replayWebhookDeliveries`` sends it again under the same webhook-id. Bad input is a typed
error naming the field and changes nothing; another partner's subscription looks missing."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.worker.loop import Options, Totals, one_pass
from tests.support.harness import NOW, PARTNER_SCOPES, Api, make_gateway, partner_api
from tests.support.webhook_receiver import receiving, verify

pytestmark = pytest.mark.anyio

ERR = "... on Error { code message field }"
CREATE = f"""mutation($input: CreateWebhookSubscriptionInput!) {{
  createWebhookSubscription(input: $input) {{ __typename
  ... on CreateWebhookSubscriptionSuccess {{ secret subscription {{ id url eventTypes state }} }}
  {ERR} }} }}"""
LIST = f"""query {{ webhookSubscriptions {{ __typename
  ... on WebhookSubscriptionList {{ subscriptions {{ id state }} }} {ERR} }} }}"""
DELIVERIES = f"""query($s: ID!, $state: WebhookDeliveryState, $first: Int!, $after: String) {{
  webhookDeliveries(subscriptionId: $s, state: $state, first: $first, after: $after) {{
  __typename ... on WebhookDeliveryConnection {{ edges {{ node {{ id eventId eventType state
  attempts lastStatus lastError }} }} pageInfo {{ hasNextPage endCursor }} }} {ERR} }} }}"""
ROTATE = f"""mutation($s: ID!) {{ rotateWebhookSecret(subscriptionId: $s) {{ __typename
  ... on RotateWebhookSecretSuccess {{ secret subscription {{ previousSecretExpiresAt }} }}
  {ERR} }} }}"""
DISABLE = f"""mutation($s: ID!) {{ disableWebhookSubscription(subscriptionId: $s) {{ __typename
  ... on DisableWebhookSubscriptionSuccess {{ subscription {{ state }} }} {ERR} }} }}"""
REPLAY_ONE = f"""mutation($id: ID!) {{ replayWebhookDelivery(id: $id) {{ __typename
  ... on ReplayWebhookDeliverySuccess {{ delivery {{ state eventId }} }} {ERR} }} }}"""
REPLAY_DEAD = f"""mutation($input: ReplayWebhookDeliveriesInput!) {{
  replayWebhookDeliveries(input: $input) {{ __typename
  ... on ReplayWebhookDeliveriesSuccess {{ replayed more }} {ERR} }} }}"""


class Ceiling(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, clock=FixedClock(NOW))


def subscriptions_count(gw: Gateway) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.webhook_subscriptions))
                   .scalar_one())


def work(gw: Gateway) -> Totals:
    totals = Totals()
    one_pass(gw.services.engine, gw.services.clock, (), Options(timeout_s=2.0), totals,
             rng=Ceiling())
    return totals


async def create(api: Api, url: str, types: list[str]) -> dict[str, Any]:
    data = await api.gql(CREATE, {"input": {"url": url, "eventTypes": types}})
    result: dict[str, Any] = data["createWebhookSubscription"]
    return result


async def test_the_guide_subscribe_deliver_dead_letter_replay(gw: Gateway) -> None:
    clock = gw.services.clock
    assert isinstance(clock, FixedClock)
    grocery = await partner_api(gw, "grocery")
    enrol_customer(gw.services.engine, clock, "grocery", "c-1")
    with receiving() as receiver:
        made = await create(grocery, receiver.url, ["points.*"])
        assert made["__typename"] == "CreateWebhookSubscriptionSuccess"
        assert made["secret"].startswith("whsec_")
        assert made["subscription"]["eventTypes"] == ["points.*"]
        sub_id = made["subscription"]["id"]

        earn_points(gw.services.ledger, EarnPoints("grocery", "c-1", Money(120_000, "UAH"),
                                                   "store", "p-1", "k-1"))
        assert work(gw).outcomes["delivered"] == 1
        (first,) = receiver.requests
        assert verify(made["secret"], first.webhook_id, first.timestamp, first.body,
                      first.signature)
        assert first.json["data"]["points"] == 120 and first.json["data"]["customerId"] == "c-1"

        receiver.mode = "fail"
        earn_points(gw.services.ledger, EarnPoints("grocery", "c-1", Money(50_000, "UAH"),
                                                   "store", "p-2", "k-2"))
        await _run_a_failing_day(gw, clock)
        await grocery.fetch_token()  # a day later: the first token has expired
        page = (await grocery.gql(DELIVERIES, {"s": sub_id, "state": "DEAD", "first": 10})
                )["webhookDeliveries"]
        (dead,) = [edge["node"] for edge in page["edges"]]
        assert (dead["state"], dead["attempts"], dead["lastStatus"], dead["lastError"]) == (
            "DEAD", 34, 500, "HTTP 500")
        assert dead["eventType"] == "points.earned"

        receiver.mode = "ok"
        replayed = (await grocery.gql(REPLAY_DEAD, {"input": {
            "subscriptionId": sub_id, "since": NOW.isoformat(),
            "until": (clock.now() + timedelta(seconds=1)).isoformat()}})
                    )["replayWebhookDeliveries"]
        assert replayed == {"__typename": "ReplayWebhookDeliveriesSuccess", "replayed": 1,
                            "more": False}
        assert work(gw).outcomes["delivered"] == 1
        assert receiver.requests[-1].webhook_id == dead["eventId"]
        assert receiver.requests[-1].json["data"]["points"] == 50

        everything = (await grocery.gql(DELIVERIES, {"s": sub_id, "first": 1})
                      )["webhookDeliveries"]
        assert everything["pageInfo"]["hasNextPage"] is True
        rest = (await grocery.gql(DELIVERIES, {"s": sub_id, "first": 5,
                                               "after": everything["pageInfo"]["endCursor"]})
                )["webhookDeliveries"]
        assert [e["node"]["state"] for e in everything["edges"] + rest["edges"]] == [
            "DELIVERED", "DELIVERED"]  # newest first: the replayed one, then the first

        one = (await grocery.gql(REPLAY_ONE, {"id": everything["edges"][0]["node"]["id"]})
               )["replayWebhookDelivery"]
        assert one["delivery"] == {"state": "PENDING", "eventId": dead["eventId"]}


async def _run_a_failing_day(gw: Gateway, clock: FixedClock) -> None:
    for _ in range(100):
        work(gw)
        with gw.services.engine.connect() as conn:
            pending = conn.execute(select(func.min(t.event_deliveries.c.next_attempt_at))
                                   .where(t.event_deliveries.c.state == "pending")
                                   ).scalar_one()
        if pending is None:
            return
        clock.set(max(pending, clock.now()))
    raise AssertionError("still pending after 100 passes")


@pytest.mark.parametrize(("url", "types", "field"), [
    ("http://hooks.example.com/x", ["points.*"], "url"),
    ("https://user:pw@hooks.example.com/x", ["points.*"], "url"),
    ("not a url", ["points.*"], "url"),
    ("https://hooks.example.com/x", [], "eventTypes"),
    ("https://hooks.example.com/x", ["points.earnt"], "eventTypes"),
])
async def test_bad_input_is_a_typed_error_naming_the_field_and_writes_nothing(
        gw: Gateway, url: str, types: list[str], field: str) -> None:
    grocery = await partner_api(gw, "grocery")
    result = await create(grocery, url, types)
    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError", "INVALID_INPUT", field)
    assert subscriptions_count(gw) == 0


@pytest.mark.parametrize(("since", "until", "field"), [
    ("2026-11-20T00:00:00", "2026-11-24T00:00:00Z", "since"),
    ("2026-11-20T00:00:00Z", "2026-11-24T00:00:00", "until"),
    ("2026-11-24T00:00:00Z", "2026-11-20T00:00:00Z", "until"),
])
async def test_a_replay_window_without_a_zone_is_a_typed_error_naming_it(
        gw: Gateway, since: str, until: str, field: str) -> None:
    """Review (issue 13): a time without a zone in replayWebhookDeliveries reached the
    database and failed as an unexpected error instead of a typed one naming the field."""
    grocery = await partner_api(gw, "grocery")
    made = (await create(grocery, "https://hooks.example.com/g", ["*"]))["subscription"]
    result = (await grocery.gql(REPLAY_DEAD, {"input": {
        "subscriptionId": made["id"], "since": since, "until": until}}))[
        "replayWebhookDeliveries"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError", "INVALID_INPUT", field)


async def test_another_partners_subscription_looks_missing(gw: Gateway) -> None:
    grocery = await partner_api(gw, "grocery")
    electronics = await partner_api(gw, "electronics")
    theirs = (await create(electronics, "https://hooks.example.com/e", ["*"]))["subscription"]
    ours = (await create(grocery, "https://hooks.example.com/g", ["*"]))["subscription"]
    listed = (await grocery.gql(LIST))["webhookSubscriptions"]["subscriptions"]
    assert [s["id"] for s in listed] == [ours["id"]]
    for document, variables in ((ROTATE, {"s": theirs["id"]}), (DISABLE, {"s": theirs["id"]}),
                                (DELIVERIES, {"s": theirs["id"], "first": 5})):
        foreign = next(iter((await grocery.gql(document, variables)).values()))
        missing = next(iter((await grocery.gql(document, {**variables, "s": "whs_NONE"})
                             ).values()))
        assert foreign == missing == {
            "__typename": "NotFoundError", "code": "NOT_FOUND", "field": "subscriptionId",
            "message": "no webhook subscription of yours has this id"}
    replay = (await grocery.gql(REPLAY_ONE, {"id": "dlv_NONE"}))["replayWebhookDelivery"]
    assert (replay["__typename"], replay["field"]) == ("NotFoundError", "id")
    # theirs is untouched: still active, its secret never rotated
    with gw.services.engine.connect() as conn:
        row = conn.execute(select(t.webhook_subscriptions).where(
            t.webhook_subscriptions.c.id == theirs["id"])).one()
    assert (row.state, row.previous_secret) == ("active", None)


async def test_rotate_and_disable(gw: Gateway) -> None:
    grocery = await partner_api(gw, "grocery")
    made = await create(grocery, "https://hooks.example.com/g", ["points.earned"])
    sub_id = made["subscription"]["id"]
    rotated = (await grocery.gql(ROTATE, {"s": sub_id}))["rotateWebhookSecret"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    assert rotated["subscription"]["previousSecretExpiresAt"] == (
        NOW + timedelta(hours=24)).isoformat()
    disabled = (await grocery.gql(DISABLE, {"s": sub_id}))["disableWebhookSubscription"]
    assert disabled["subscription"]["state"] == "DISABLED"
    again = (await grocery.gql(ROTATE, {"s": sub_id}))["rotateWebhookSecret"]
    assert (again["__typename"], again["field"]) == ("InvalidInputError", "subscriptionId")


async def test_without_the_scope_it_is_forbidden(gw: Gateway) -> None:
    grocery = await partner_api(gw, "grocery",
                                scopes=sorted(PARTNER_SCOPES - {"webhooks:manage"}))
    result = await create(grocery, "https://hooks.example.com/g", ["*"])
    assert (result["__typename"], result["code"]) == ("ForbiddenError", "FORBIDDEN")
    assert subscriptions_count(gw) == 0


async def test_a_second_rotation_within_a_day_is_a_typed_error_and_changes_nothing(
        gw: Gateway) -> None:
    """Review 2 (decision 030): one rotation per 24 hours, so every secret signs its full day
    after its replacement; the refusal names the field and the secret stays as it was."""
    grocery = await partner_api(gw, "grocery")
    made = await create(grocery, "https://hooks.example.com/g", ["points.earned"])
    sub_id = made["subscription"]["id"]
    await grocery.gql(ROTATE, {"s": sub_id})
    with gw.services.engine.connect() as conn:
        secrets_before = conn.execute(select(t.webhook_subscriptions.c.secret,
                                             t.webhook_subscriptions.c.previous_secret)).one()
    again = (await grocery.gql(ROTATE, {"s": sub_id}))["rotateWebhookSecret"]
    assert (again["__typename"], again["code"], again["field"]) == (
        "InvalidInputError", "INVALID_INPUT", "subscriptionId")
    assert (NOW + timedelta(hours=24)).isoformat() in again["message"]
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(t.webhook_subscriptions.c.secret,
                                   t.webhook_subscriptions.c.previous_secret)).one() == (
            secrets_before)
