"""The member's notifications over GraphQL with real member tokens on a real database: the feed
in ``viewer.notifications`` (newest first, paged, unread count), ``markNotificationsRead`` (own
notifications only: another member's id changes nothing), ``setNotificationPreferences``, and
the ``coalition_marketing`` consent through ``setConsent``. Partner earns go through the real
partner API; their events are fed to the notifications consumer as the worker would."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.db.uow import UnitOfWork
from gateway.ledger.enrolment import sign_up
from gateway.notifications.consumer import make_consumer
from gateway.outbox import read_events
from tests.support.harness import NOW, make_gateway, partner_api
from tests.support.members import LINK, member_api

ERROR = "... on Error { __typename code message field }"
FEED = f"""query($first: Int!, $after: String) {{ viewer {{ __typename ... on Viewer {{
  notifications(first: $first, after: $after) {{ unreadCount
    edges {{ cursor node {{ id kind title body data readAt }} }}
    pageInfo {{ hasNextPage endCursor }} }}
  notificationPreferences {{ email emailAddressKnown }} }} {ERROR} }} }}"""
MARK = f"""mutation($ids: [ID!]) {{ markNotificationsRead(ids: $ids) {{ __typename
  ... on MarkNotificationsReadSuccess {{ marked unreadCount }} {ERROR} }} }}"""
PREFS = f"""mutation($email: Boolean!) {{ setNotificationPreferences(email: $email) {{ __typename
  ... on SetNotificationPreferencesSuccess {{ preferences {{ email emailAddressKnown }} }}
  {ERROR} }} }}"""
CONSENT = f"""mutation($purpose: ConsentPurpose!, $g: Boolean!) {{
  setConsent(purpose: $purpose, granted: $g) {{ __typename
  ... on SetConsentSuccess {{ consent {{ purpose partnerId granted }} }} {ERROR} }} }}"""
EARN = """mutation($c: ID!, $amount: MinorUnits!, $p: String!) { earnPoints(input: {
  customerId: $c, amount: {amountMinor: $amount, currency: "UAH"}, channel: STORE,
  purchaseId: $p, idempotencyKey: $p}) { ... on EarnPointsSuccess { points } } }"""


def drain(gw: Gateway) -> None:
    handler = make_consumer(gw.services.clock, lambda: gw.services.ledger.tiers)
    with UnitOfWork(gw.services.engine, write=False) as uow:
        events = read_events(uow.conn, limit=10_000, types=sorted(handler.types))
    for event in events:
        handler.handle(gw.services.engine, event)


def read_flags(gw: Gateway) -> list[Any]:
    with gw.services.engine.connect() as conn:
        return list(conn.execute(select(t.notifications.c.id, t.notifications.c.read_at)
                                 .order_by(t.notifications.c.id)).all())


async def test_feed_pages_marks_read_and_preferences(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, clock=FixedClock(NOW))
    s = gw.services
    ada = sign_up(s.engine, s.clock, "ada@example.com", "correct horse battery").member_id
    bob = sign_up(s.engine, s.clock, "bob@example.com", "correct horse battery").member_id
    grocery = await partner_api(gw, "grocery")
    for who, customer in ((ada, "g-1"), (bob, "g-2")):
        code = (await member_api(gw, who).gql("mutation { createLinkCode { "
                                              "... on CreateLinkCodeSuccess { linkCode } } }"))
        linked = await grocery.gql(LINK, {"c": customer,
                                          "code": code["createLinkCode"]["linkCode"]})
        assert linked["linkCustomer"]["__typename"] == "LinkCustomerSuccess"
    for n, amount in enumerate((120_000, 30_000, 50_000)):
        await grocery.gql(EARN, {"c": "g-1", "amount": amount, "p": f"a-{n}"})
    await grocery.gql(EARN, {"c": "g-2", "amount": 70_000, "p": "b-0"})
    drain(gw)
    me, other = member_api(gw, ada), member_api(gw, bob)
    first = (await me.gql(FEED, {"first": 2}))["viewer"]
    feed = first["notifications"]
    assert feed["unreadCount"] == 3
    assert [e["node"]["title"] for e in feed["edges"]] == [
        "You earned 50 points at Kolos Grocery", "You earned 30 points at Kolos Grocery"]
    assert json.loads(feed["edges"][0]["node"]["data"])["points"] == 50
    assert feed["pageInfo"]["hasNextPage"] is True
    assert first["notificationPreferences"] == {"email": True, "emailAddressKnown": True}
    rest = (await me.gql(FEED, {"first": 2, "after": feed["pageInfo"]["endCursor"]}))
    assert [e["node"]["title"] for e in rest["viewer"]["notifications"]["edges"]] == [
        "You earned 120 points at Kolos Grocery"]
    # Bob's feed is his alone; Bob marking Ada's notification read changes nothing.
    theirs = (await other.gql(FEED, {"first": 10}))["viewer"]["notifications"]
    assert [e["node"]["title"] for e in theirs["edges"]] == [
        "You earned 70 points at Kolos Grocery"]
    before = read_flags(gw)
    newest_id = feed["edges"][0]["node"]["id"]
    assert (await other.gql(MARK, {"ids": [newest_id]}))["markNotificationsRead"] == {
        "__typename": "MarkNotificationsReadSuccess", "marked": 0, "unreadCount": 1}
    assert read_flags(gw) == before
    assert (await me.gql(MARK, {"ids": [newest_id]}))["markNotificationsRead"] == {
        "__typename": "MarkNotificationsReadSuccess", "marked": 1, "unreadCount": 2}
    assert (await me.gql(MARK, {"ids": ["not-a-number"]}))["markNotificationsRead"] == {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT", "field": "ids",
        "message": "ids are notification ids from your feed"}
    # Review 2: an id past any database integer is the same typed error, not a 500.
    assert (await me.gql(MARK, {"ids": ["9" * 30]}))["markNotificationsRead"] == {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT", "field": "ids",
        "message": "ids are notification ids from your feed"}
    assert (await me.gql(MARK, {}))["markNotificationsRead"]["marked"] == 2
    assert (await me.gql(FEED, {"first": 1}))["viewer"]["notifications"]["unreadCount"] == 0
    bad = (await me.post(FEED, {"first": 101})).json()["errors"][0]
    assert (bad["message"], bad["extensions"]["code"]) == (
        "first must be between 1 and 100", "INVALID_INPUT")
    huge = base64.urlsafe_b64encode(b"n:" + b"9" * 30).decode()  # review 2: not a 500
    bad = (await me.post(FEED, {"first": 1, "after": huge})).json()["errors"][0]
    assert (bad["message"], bad["extensions"]["code"]) == (
        "after is not a cursor of this list", "INVALID_INPUT")
    assert (await me.gql(PREFS, {"email": False}))["setNotificationPreferences"] == {
        "__typename": "SetNotificationPreferencesSuccess",
        "preferences": {"email": False, "emailAddressKnown": True}}
    assert (await me.gql(CONSENT, {"purpose": "COALITION_MARKETING", "g": True}))[
        "setConsent"] == {"__typename": "SetConsentSuccess", "consent": {
            "purpose": "coalition_marketing", "partnerId": None, "granted": True}}
    with s.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.notification_emails)
                            ).scalar_one() == 4  # one per earn, both members have an address
