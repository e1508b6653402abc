"""The authorization matrix (DESIGN §8): every root operation × every kind of caller.

Rows are the ten root fields partners call, plus the two Apollo Federation fields
(``_entities``, ``_service``: no result union, so their refusals are top-level typed errors);
columns are the token cases. Each cell states the
exact answer, and every cell that is not a success proves that the rejected call changed nothing
(``ledger_snapshot`` equal before and after). The success cells prove the converse for the
mutations (the snapshot does move), so "unchanged" is a check that can fail.

* A token the gateway cannot use is refused before any GraphQL work: HTTP 401 with the RFC 6750
  §3.1 challenge naming the precise reason (a bare ``Bearer`` when no token was sent at all).
* A usable token without the operation's scope gets the typed ``ForbiddenError`` naming it.
* Another partner's customer id, hold id or purchase id is answered exactly like an id that
  never existed: same type, same code, same message but for the id itself.
* A token holding the operation's scope and nothing else succeeds.

One gateway serves the whole module (built once, with two partners sharing a member who has
points, open holds and purchases); every call uses fresh idempotency keys and purchase ids.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql import build_schema
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from gateway.api.schema import print_sdl, print_subgraph_sdl
from gateway.app import Gateway
from gateway.auth.scopes import format_scope
from gateway.auth.tokens import LEEWAY_SECONDS
from gateway.challenges import service as challenge_service
from gateway.core.clock import FixedClock
from gateway.core.ids import new_id
from gateway.core.money import Money
from gateway.db.tables import (
    campaign_versions,
    challenge_versions,
    coupons,
    draws,
    event_deliveries,
    referrals,
    webhook_subscriptions,
)
from gateway.db.tables import segments as segment_table
from gateway.draws.service import list_draws
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.members import consent
from gateway.members.secrets import reference_for
from gateway.promotions import manage, segments
from gateway.promotions.coupon_issue import CouponTerms, import_coupons, issue_coupons
from gateway.promotions.model import COALITION
from gateway.webhooks import deliveries as webhook_deliveries
from gateway.webhooks import subscriptions as webhook_subs
from gateway.worker.loop import Options, Totals, one_pass
from tests.support.harness import NOW, PARTNER_SCOPES, Api, ledger_snapshot, make_gateway
from tests.support.members import link_code_for, member_id_of

pytestmark = pytest.mark.asyncio(loop_scope="module")


def snapshot(gw: Gateway) -> dict[str, Any]:
    """The ledger's snapshot, and how many campaign versions, coupons and referrals exist
    (offers:manage and member writes)."""
    with gw.services.engine.connect() as conn:
        counts = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                  for table in (campaign_versions, segment_table, coupons, referrals,
                                challenge_versions)}
        counts["draws"] = conn.execute(select(func.count()).select_from(draws)).scalar_one()
        counts["draws closed"] = conn.execute(select(func.count()).select_from(draws).where(
            draws.c.status == "closed")).scalar_one()
    return {**ledger_snapshot(gw), **counts, "webhooks": webhook_state(gw)}


def webhook_state(gw: Gateway) -> list[Any]:
    """Every subscription's secret and state and every delivery's state and schedule."""
    with gw.services.engine.connect() as conn:
        subs = conn.execute(select(webhook_subscriptions.c.id, webhook_subscriptions.c.secret,
                                   webhook_subscriptions.c.state)
                            .order_by(webhook_subscriptions.c.id)).all()
        sent = conn.execute(select(event_deliveries.c.id, event_deliveries.c.state,
                                   event_deliveries.c.next_attempt_at)
                            .order_by(event_deliveries.c.id)).all()
    return [tuple(r) for r in subs] + [tuple(r) for r in sent]

# --- the world every cell runs in --------------------------------------------------------------


@dataclass
class World:
    gw: Gateway
    clock: FixedClock
    grocery: Api  # the caller in every cell
    electronics: Api  # the other partner
    member_id: str  # grocery "g-1" and electronics "e-7"
    spare_members: list[str]  # electronics "e-solo-<n>" only, free to link at the grocery
    grocery_holds: dict[str, str]  # "capture" / "void" → an open hold of the grocery
    electronics_hold: str
    scoped: dict[str, str]  # scope → a token holding exactly that scope
    lacking: dict[str, str]  # scope → a token holding every partner scope but that one
    bad: dict[str, str]  # token case → a token unusable in that one way
    expired_at: datetime  # a moment at which bad["expired"] (and only it) is past exp + leeway
    coupon_code: str  # one of the grocery's coupons
    hooks: dict[str, str] = field(default_factory=dict)  # purpose → a webhook id (see _hooks)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    draws: dict[str, str] = field(default_factory=dict)  # owner -> an open draw of its own
    closable: list[str] = field(default_factory=list)  # grocery draws past their close time

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"


ENROL = """mutation { enrolCustomer(input: {customerId: "%s"}) {
  ... on EnrolCustomerSuccess { member { memberReference } } ... on Error { code message } } }"""
LINK = """mutation { linkCustomer(input: {customerId: "%s", linkCode: "%s"}) {
  __typename ... on Error { code message } } }"""
EARN = """mutation { earnPoints(input: {customerId: "%s", amount: {amountMinor: %d, currency:
  "%s"}, channel: STORE, purchaseId: "%s", idempotencyKey: "%s"}) {
  __typename ... on Error { code message } } }"""
AUTHORISE = """mutation { authoriseRedemption(input: {customerId: "%s", points: %d, basketAmount:
  {amountMinor: 10000, currency: "%s"}, idempotencyKey: "%s"}) {
  ... on AuthoriseRedemptionSuccess { holdId } ... on Error { code message } } }"""


async def _token(api: Api, scopes: frozenset[str] | set[str]) -> str:
    return await api.fetch_token(format_scope(scopes))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(_unb64(token.split(".")[1]))
    return claims


def _unusable_tokens(gw: Gateway, good: str) -> dict[str, str]:
    """Tokens each wrong in exactly one way; the rest is the claims of the real ``good``."""
    claims = _claims(good)
    signing = gw.auth.keys.signing_key()  # the gateway's own private key
    header = {"alg": "ES256", "typ": "at+jwt", "kid": signing.kid}

    head, payload, signature = good.split(".")
    flipped = bytearray(_unb64(signature))
    flipped[0] ^= 0x01
    unsigned = ".".join((_b64(json.dumps({"alg": "none", "typ": "at+jwt",
                                          "kid": signing.kid}).encode()), payload, ""))
    stranger = ECKey.generate_key("P-256", private=True)
    return {
        "bad signature": f"{head}.{payload}.{_b64(bytes(flipped))}",
        "alg none": unsigned,
        "wrong typ": jwt.encode({**header, "typ": "JWT"}, claims, signing.key,
                                algorithms=["ES256"]),
        "wrong audience": jwt.encode(header, {**claims, "aud": "some-other-api"}, signing.key,
                                     algorithms=["ES256"]),
        "unknown key id": jwt.encode({**header, "kid": stranger.thumbprint()}, claims, stranger,
                                     algorithms=["ES256"]),
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path_factory.mktemp("matrix"), clock=clock)
    grocery, electronics = await _api(gw, "grocery"), await _api(gw, "electronics")

    await grocery.gql(ENROL % "g-1")
    member = member_id_of(gw, "grocery", "g-1")
    linked = await electronics.gql(LINK % ("e-7", link_code_for(gw, "grocery", "g-1")))
    assert linked["linkCustomer"]["__typename"] == "LinkCustomerSuccess", linked
    spares = []
    for n in range(3):
        await electronics.gql(ENROL % f"e-solo-{n}")
        spares.append(member_id_of(gw, "electronics", f"e-solo-{n}"))
    for api, query in (
        (grocery, EARN % ("g-1", 120000, "UAH", "g-receipt-1", "setup-earn-1")),  # 120 points
        (grocery, EARN % ("g-1", 1000000, "UAH", "g-bulk", "setup-earn-2")),  # 1,000 points
        (electronics, EARN % ("e-7", 5000, "EUR", "e-receipt-1", "setup-earn-3")),  # 50 points
    ):
        earned = await api.gql(query)
        assert earned["earnPoints"]["__typename"] == "EarnPointsSuccess", earned
    holds = {}
    for purpose in ("capture", "void"):
        placed = await grocery.gql(AUTHORISE % ("g-1", 50, "UAH", f"setup-hold-{purpose}"))
        holds[purpose] = placed["authoriseRedemption"]["holdId"]
    placed = await electronics.gql(AUTHORISE % ("e-7", 100, "EUR", "setup-hold-e"))
    electronics_hold = placed["authoriseRedemption"]["holdId"]

    for owner, campaign_id in (("grocery", "steady"), ("grocery", "changing"),
                               ("grocery", "ending"), ("electronics", "theirs"),
                               (COALITION, "everyone")):
        extra = {"partners": ["grocery", "electronics"]} if owner == COALITION else {}
        manage.create(gw.services.engine,
                      manage.parse({**_campaign(campaign_id), **extra}, owner=owner),
                      actor="test", now=NOW)
    # The electronics shop's segment "theirs": the grocery's own "theirs" is another segment.
    segments.define(gw.services.engine, "electronics", "theirs", "Theirs",
                    segments.parse_clauses([{"at": "electronics", "days": 30}]), actor="test",
                    now=NOW)

    # Challenges (decision 032): electronics' "theirs", the grocery's "ending-challenge".
    for owner, challenge_id in (("electronics", "theirs"), ("grocery", "ending-challenge")):
        challenge_service.define(gw.services.engine, _challenge(challenge_id, snake=True),
                                 owner=owner, actor="test", now=NOW)

    # Coupon campaigns (decision 025): the grocery's, and electronics' with one imported code.
    for owner, campaign_id in (("grocery", "coupons"), ("electronics", "their-coupons")):
        manage.create(gw.services.engine, manage.parse(
            {**_campaign(campaign_id), "conditions": {"couponPresented": True}}, owner=owner),
            actor="test", now=NOW)
    import_coupons(gw.services.engine, "electronics", CouponTerms("their-coupons"),
                   ["THEIRCODE"], customer_id=None, now=NOW, actor="test")
    grocery_code = issue_coupons(gw.services.engine, "grocery", CouponTerms("coupons"), 1,
                                 customer_id=None, now=NOW, actor="test").codes[0]

    scoped = {scope: await _token(grocery, {scope}) for scope in sorted(PARTNER_SCOPES)}
    # From a second grocery client: one client's token budget (a burst of 20) does not cover
    # a token per scope twice over now that partners hold ten scopes.
    second = await _api(gw, "grocery", name="grocery client for the lacking-scope tokens")
    lacking = {scope: await _token(second, PARTNER_SCOPES - {scope})
               for scope in sorted(PARTNER_SCOPES)}
    good = await _token(grocery, PARTNER_SCOPES)
    bad = _unusable_tokens(gw, good)

    bad["expired"] = await _token(grocery, PARTNER_SCOPES)
    expired_at = datetime.fromtimestamp(_claims(bad["expired"])["exp"], UTC) + timedelta(
        seconds=LEEWAY_SECONDS + 1)

    bad["revoked"] = await _token(grocery, PARTNER_SCOPES)
    async with grocery.http() as client:
        response = await client.post("/oauth/revoke", data={"token": bad["revoked"]},
                                     auth=(grocery.client_id, grocery.secret))
    assert response.status_code == 200, response.text

    doomed = await _api(gw, "grocery", name="grocery client about to be disabled")
    assert doomed.token is not None
    bad["disabled client"] = doomed.token
    gw.auth.clients.disable(doomed.client_id, actor="test")

    world = World(gw, clock, grocery, electronics, member, spares, holds, electronics_hold,
                  scoped, lacking, bad, expired_at, grocery_code)
    _draws(world)
    await _hooks(world)
    yield world


DOWN = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, every attempt fails


async def _hooks(w: World) -> None:
    """Webhook subscriptions of both shops (decision 030), made at NOW like the setup's earns,
    so each delivers those earns and one more, failed for a day until dead (the clock then
    goes back to NOW): the grocery's
    "rotate", "disable", "one" (a dead delivery to replay by id) and "window" (one to replay
    by time), electronics' "theirs" with its dead delivery."""
    engine = w.gw.services.engine
    for purpose, owner in (("rotate", "grocery"), ("disable", "grocery"), ("one", "grocery"),
                           ("window", "grocery"), ("theirs", "electronics")):
        w.hooks[purpose] = webhook_subs.create(
            engine, owner, DOWN, ["points.earned"], production=False, actor="test",
            now=NOW).subscription.id
    for partner, customer, amount in (("grocery", "g-1", Money(10000, "UAH")),
                                      ("electronics", "e-7", Money(1000, "EUR"))):
        earn_points(w.gw.services.ledger, EarnPoints(partner, customer, amount, "store",
                                                     f"{partner}-hook", f"{partner}-hook"))
    while True:
        one_pass(engine, w.clock, (), Options(timeout_s=1.0), Totals())
        with engine.connect() as conn:
            due = conn.execute(select(func.min(event_deliveries.c.next_attempt_at))
                               .where(event_deliveries.c.state == "pending")).scalar_one()
        if due is None:
            break
        w.clock.set(max(due, w.clock.now()))
    w.clock.set(NOW)
    for purpose in ("one", "theirs"):
        page = webhook_deliveries.listed(engine, "electronics" if purpose == "theirs"
                                         else "grocery", w.hooks[purpose], state="dead",
                                         first=1, after=None)
        w.hooks[f"{purpose}-delivery"] = page.items[0].id


def _draws(w: World) -> None:
    """Prize draws (decision 033): one open draw each for the grocery and electronics, and a
    pool of the grocery's draws already past their close time (each closeDraw call takes one)."""
    from gateway.draws.model import DrawTerms, Prize
    from gateway.draws.service import create_draw

    def terms(at: datetime) -> DrawTerms:
        return DrawTerms("Matrix draw", at, at + timedelta(days=1), (Prize("Bike", 1),), 5,
                         entries_per_purchase=1)

    engine, rules = w.gw.services.engine, w.gw.services.rules
    for owner in ("grocery", "electronics"):
        w.draws[owner] = create_draw(engine, rules, NOW, owner, terms(NOW), "test").id
    before = NOW - timedelta(days=2)
    w.closable.extend(create_draw(engine, rules, before, "grocery", terms(before), "test").id
                      for _ in range(40))



async def _api(gw: Gateway, partner_id: str, *, name: str | None = None) -> Api:
    created = gw.auth.clients.create(name=name or f"{partner_id} matrix client", kind="partner",
                                     partner_id=partner_id, actor="test")
    api = Api(gw, partner_id, created.client.client_id, created.secret)
    await api.fetch_token()
    return api


# --- the rows: one per root operation ----------------------------------------------------------

ERRORS = "__typename ... on Error { code message field } ... on ForbiddenError { scope }"
MONEY = "{ amountMinor currency }"


class _MemberReference:
    """Equal to any pairwise member reference (they are generated)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.fullmatch(r"mr_[a-z2-7]{26}", other) is not None

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<any member reference>"


ANY_MEMBER = _MemberReference()


def _code(w: World, member_id: str) -> str:
    return consent.create_link_code(w.gw.services.engine, w.clock, member_id).code


def _reference(w: World, member_id: str) -> str:
    return reference_for(w.gw.services.engine, w.clock, "grocery", member_id)


@dataclass(frozen=True)
class Op:
    field: str
    scope: str
    document: str
    # (world, the resource id or None for the op's own) → variables; fresh keys every call
    variables: Callable[[World, str | None], dict[str, Any]]
    # world → the exact success payload
    success: Callable[[World], dict[str, Any]]
    resource: str  # which id "another partner's resource" substitutes
    # (typename, code) answered for an id that does not exist; None: such an id is fine
    missing: tuple[str, str] | None
    is_query: bool = False


def _mutation(name: str, field_name: str, success_fragment: str) -> str:
    return (f"mutation($input: {name}Input!) {{ {field_name}(input: $input) {{ {ERRORS} "
            f"... on {name}Success {{ {success_fragment} }} }} }}")


def _earn_input(w: World, customer: str | None) -> dict[str, Any]:
    return {"input": {"customerId": customer or "g-1",
                      "amount": {"amountMinor": 120000, "currency": "UAH"}, "channel": "STORE",
                      "purchaseId": w.fresh("receipt"), "idempotencyKey": w.fresh("key")}}


def _redeem_input(w: World, customer: str | None) -> dict[str, Any]:
    return {"input": {"customerId": customer or "g-1", "points": 50,
                      "basketAmount": {"amountMinor": 10000, "currency": "UAH"},
                      "idempotencyKey": w.fresh("key")}}


OPS = [
    Op("enrolCustomer", "members:link",
       _mutation("EnrolCustomer", "enrolCustomer", "created member { memberReference }"),
       lambda w, c: {"input": {"customerId": c or w.fresh("new-customer")}},
       lambda w: {"__typename": "EnrolCustomerSuccess", "created": True,
                  "member": {"memberReference": ANY_MEMBER}},
       "customer", None),
    Op("linkCustomer", "members:link",
       _mutation("LinkCustomer", "linkCustomer", "created member { memberReference }"),
       lambda w, c: {"input": {"customerId": c or w.fresh("linked-customer"),
                               "linkCode": _code(w, w.spare_members[0])}},
       lambda w: {"__typename": "LinkCustomerSuccess", "created": True,
                  "member": {"memberReference": _reference(w, w.spare_members[0])}},
       "customer", None),
    Op("earnPoints", "points:earn",
       _mutation("EarnPoints", "earnPoints", "points ruleVersion explanation"),
       _earn_input,
       lambda w: {"__typename": "EarnPointsSuccess", "points": 120, "ruleVersion": 1,
                  "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points"]},
       "customer", ("UnknownMemberError", "UNKNOWN_MEMBER")),
    Op("redeemPoints", "points:redeem",
       _mutation("RedeemPoints", "redeemPoints", f"points ruleVersion value {MONEY}"),
       _redeem_input,
       lambda w: {"__typename": "RedeemPointsSuccess", "points": 50, "ruleVersion": 1,
                  "value": {"amountMinor": 500, "currency": "UAH"}},
       "customer", ("UnknownMemberError", "UNKNOWN_MEMBER")),
    Op("authoriseRedemption", "points:redeem",
       "mutation($input: RedeemPointsInput!) { authoriseRedemption(input: $input) { "
       f"{ERRORS} ... on AuthoriseRedemptionSuccess {{ points value {MONEY} expiresAt }} }} }}",
       _redeem_input,
       lambda w: {"__typename": "AuthoriseRedemptionSuccess", "points": 50,
                  "value": {"amountMinor": 500, "currency": "UAH"},
                  "expiresAt": "2026-11-23T10:15:00+00:00"},  # NOW + the grocery's 900 s
       "customer", ("UnknownMemberError", "UNKNOWN_MEMBER")),
    Op("captureRedemption", "points:redeem",
       _mutation("CaptureRedemption", "captureRedemption", f"points released value {MONEY}"),
       lambda w, h: {"input": {"holdId": h or w.grocery_holds["capture"],
                               "idempotencyKey": w.fresh("key")}},
       lambda w: {"__typename": "CaptureRedemptionSuccess", "points": 50, "released": 0,
                  "value": {"amountMinor": 500, "currency": "UAH"}},
       "hold", ("NotFoundError", "NOT_FOUND")),
    Op("voidRedemption", "points:redeem",
       _mutation("VoidRedemption", "voidRedemption", "released"),
       lambda w, h: {"input": {"holdId": h or w.grocery_holds["void"],
                               "idempotencyKey": w.fresh("key")}},
       lambda w: {"__typename": "VoidRedemptionSuccess", "released": 50},
       "hold", ("NotFoundError", "NOT_FOUND")),
    Op("returnPurchase", "points:reverse",
       _mutation("ReturnPurchase", "returnPurchase",
                 "pointsReversed pointsOwed pointsUnrecovered pointsRefunded "
                 f"amountReturnedTotal {MONEY}"),
       lambda w, p: {"input": {"purchaseId": p or "g-receipt-1",
                               "amount": {"amountMinor": 60000, "currency": "UAH"},
                               "idempotencyKey": w.fresh("key")}},
       lambda w: {"__typename": "ReturnPurchaseSuccess", "pointsReversed": 60, "pointsOwed": 0,
                  "pointsUnrecovered": 0, "pointsRefunded": 0,
                  "amountReturnedTotal": {"amountMinor": 60000, "currency": "UAH"}},
       "purchase", ("NotFoundError", "NOT_FOUND")),
    Op("member", "members:read",
       f"query($customerId: ID!) {{ member(customerId: $customerId) {{ {ERRORS} "
       "... on Member { customerId memberReference } } }",
       lambda w, c: {"customerId": c or "g-1"},
       lambda w: {"__typename": "Member", "customerId": "g-1",
                  "memberReference": _reference(w, w.member_id)},
       "customer", ("UnknownMemberError", "UNKNOWN_MEMBER"), is_query=True),
    Op("previewEarn", "points:earn",
       f"query($input: PreviewEarnInput!) {{ previewEarn(input: $input) {{ {ERRORS} "
       "... on PreviewEarnSuccess { points uncappedPoints cappedBy ruleVersion } } }",
       _earn_input,
       lambda w: {"__typename": "PreviewEarnSuccess", "points": 120, "uncappedPoints": 120,
                  "cappedBy": None, "ruleVersion": 1},
       "customer", None, is_query=True),
]


def _campaign(campaign_id: str | None = None) -> dict[str, Any]:
    return {**({} if campaign_id is None else {"id": campaign_id}), "name": "Bonus",
            "validFrom": "2026-12-01T00:00:00Z", "effects": [{"bonusPoints": {"points": 5}}]}


def _ending_at(w: World) -> str:
    """Each call ends the campaign a little earlier, so each publishes a version."""
    n = int(w.fresh("end").rsplit("-", 1)[1])
    return (NOW + timedelta(days=1000) - timedelta(seconds=n)).isoformat()


CAMPAIGN = "campaign { id version owner }"
OPS += [
    Op("createCampaign", "offers:manage",
       _mutation("CreateCampaign", "createCampaign", "campaign { version owner }")
       .replace("$input: CreateCampaignInput!", "$input: CampaignInput!"),
       lambda w, c: {"input": _campaign(c or w.fresh("new-campaign"))},
       lambda w: {"__typename": "CreateCampaignSuccess",
                  "campaign": {"version": 1, "owner": "grocery"}},
       "campaign id", None),
    Op("publishCampaignVersion", "offers:manage",
       "mutation($id: ID!, $input: CampaignInput!) { publishCampaignVersion(campaignId: $id, "
       f"input: $input) {{ {ERRORS} ... on PublishCampaignVersionSuccess "
       "{ campaign { id owner } } } }",
       lambda w, c: {"id": c or "grocery:changing", "input": _campaign()},
       lambda w: {"__typename": "PublishCampaignVersionSuccess",
                  "campaign": {"id": "grocery:changing", "owner": "grocery"}},
       "campaign", ("NotFoundError", "NOT_FOUND")),
    Op("endCampaign", "offers:manage",
       f"mutation($id: ID!, $at: DateTime) {{ endCampaign(campaignId: $id, at: $at) {{ {ERRORS} "
       "... on EndCampaignSuccess { campaign { id } } } }",
       lambda w, c: {"id": c or "ending", "at": _ending_at(w)},
       lambda w: {"__typename": "EndCampaignSuccess", "campaign": {"id": "grocery:ending"}},
       "campaign", ("NotFoundError", "NOT_FOUND")),
    Op("campaigns", "offers:manage",
       f"query {{ campaigns(first: 1) {{ {ERRORS} ... on CampaignConnection "
       "{ edges { node { owner } } } } }",
       lambda w, c: {},
       lambda w: {"__typename": "CampaignConnection", "edges": [{"node": {"owner": "grocery"}}]},
       "customer", None, is_query=True),
    Op("campaign", "offers:manage",
       f"query($id: ID!) {{ campaign(id: $id) {{ {ERRORS} ... on CampaignDetails "
       "{ campaign { id version } } } }",
       lambda w, c: {"id": c or "grocery:steady"},
       lambda w: {"__typename": "CampaignDetails",
                  "campaign": {"id": "grocery:steady", "version": 1}},
       "campaign", ("NotFoundError", "NOT_FOUND"), is_query=True),
    Op("simulateCampaign", "offers:manage",
       f"query($input: CampaignInput!) {{ simulateCampaign(input: $input) {{ {ERRORS} "
       "... on CampaignDryRunResult { unknownFacts } } }",
       lambda w, c: {"input": _campaign("draft")},
       lambda w: {"__typename": "CampaignDryRunResult", "unknownFacts": []},
       "customer", None, is_query=True),
]
SEGMENT_INPUT = {"name": "Grocery regulars, no fuel",
                 "clauses": [{"at": "grocery", "minPurchases": 3, "days": 30},
                             {"neverAt": "fuel", "days": 30}]}
OPS += [
    Op("defineSegment", "offers:manage",
       _mutation("DefineSegment", "defineSegment", "segment { memberCount refreshedAt }"),
       lambda w, c: {"input": {"id": c or w.fresh("segment"), **SEGMENT_INPUT}},
       lambda w: {"__typename": "DefineSegmentSuccess",
                  "segment": {"memberCount": "<5", "refreshedAt": None}},
       "segment id", None),
    Op("segments", "offers:manage",
       f"query {{ segments {{ {ERRORS} ... on SegmentList {{ segments {{ id }} }} }} }}",
       lambda w, c: {},
       lambda w: {"__typename": "SegmentList", "segments": [
           {"id": x.id} for x in segments.listed(w.gw.services.engine, "grocery")]},
       "customer", None, is_query=True),
]
OPS += [  # coupons (decision 025)
    Op("issueCoupons", "offers:manage",
       _mutation("IssueCoupons", "issueCoupons", "campaignId"),
       lambda w, c: {"input": {"campaignId": c or "coupons", "count": 2}},
       lambda w: {"__typename": "IssueCouponsSuccess", "campaignId": "grocery:coupons"},
       "campaign", ("NotFoundError", "NOT_FOUND")),
    Op("importCoupons", "offers:manage",
       _mutation("ImportCoupons", "importCoupons", "campaignId imported"),
       lambda w, c: {"input": {"campaignId": c or "coupons", "codes": [w.fresh("CODE")]}},
       lambda w: {"__typename": "ImportCouponsSuccess", "campaignId": "grocery:coupons",
                  "imported": 1},
       "campaign", ("NotFoundError", "NOT_FOUND")),
    Op("coupon", "offers:manage",
       f"query($code: String!) {{ coupon(code: $code) {{ {ERRORS} ... on CouponDetails "
       "{ campaignId state uses maxUses } } }",
       lambda w, c: {"code": c or w.coupon_code},
       lambda w: {"__typename": "CouponDetails", "campaignId": "grocery:coupons",
                  "state": "VALID", "uses": 0, "maxUses": 1},
       "coupon code", ("NotFoundError", "NOT_FOUND"), is_query=True),
]
HOOK = "subscription { id state }"
OPS += [
    Op("webhookSubscriptions", "webhooks:manage",
       f"query {{ webhookSubscriptions {{ {ERRORS} ... on WebhookSubscriptionList "
       "{ subscriptions { id state } } } }",
       lambda w, r: {},
       lambda w: {"__typename": "WebhookSubscriptionList", "subscriptions": [
           {"id": x.id, "state": x.state.upper()}
           for x in webhook_subs.listed(w.gw.services.engine, "grocery")]},
       "subscription", None, is_query=True),
    Op("webhookDeliveries", "webhooks:manage",
       f"query($s: ID!) {{ webhookDeliveries(subscriptionId: $s, first: 5) {{ {ERRORS} "
       "... on WebhookDeliveryConnection { edges { node { eventType } } } } }",
       lambda w, r: {"s": r or w.hooks["window"]},
       lambda w: {"__typename": "WebhookDeliveryConnection",  # the grocery's 3 earns at NOW
                  "edges": [{"node": {"eventType": "points.earned"}}] * 3},
       "subscription", ("NotFoundError", "NOT_FOUND"), is_query=True),
    Op("createWebhookSubscription", "webhooks:manage",
       _mutation("CreateWebhookSubscription", "createWebhookSubscription",
                 "subscription { url eventTypes state }"),
       lambda w, r: {"input": {"url": DOWN, "eventTypes": ["points.*"]}},
       lambda w: {"__typename": "CreateWebhookSubscriptionSuccess", "subscription": {
           "url": DOWN, "eventTypes": ["points.*"], "state": "ACTIVE"}},
       "subscription", None),
    Op("rotateWebhookSecret", "webhooks:manage",
       f"mutation($s: ID!) {{ rotateWebhookSecret(subscriptionId: $s) {{ {ERRORS} "
       f"... on RotateWebhookSecretSuccess {{ {HOOK} }} }} }}",
       lambda w, r: {"s": r or w.hooks["rotate"]},
       lambda w: {"__typename": "RotateWebhookSecretSuccess",
                  "subscription": {"id": w.hooks["rotate"], "state": "ACTIVE"}},
       "subscription", ("NotFoundError", "NOT_FOUND")),
    Op("disableWebhookSubscription", "webhooks:manage",
       f"mutation($s: ID!) {{ disableWebhookSubscription(subscriptionId: $s) {{ {ERRORS} "
       f"... on DisableWebhookSubscriptionSuccess {{ {HOOK} }} }} }}",
       lambda w, r: {"s": r or w.hooks["disable"]},
       lambda w: {"__typename": "DisableWebhookSubscriptionSuccess",
                  "subscription": {"id": w.hooks["disable"], "state": "DISABLED"}},
       "subscription", ("NotFoundError", "NOT_FOUND")),
    Op("replayWebhookDelivery", "webhooks:manage",
       f"mutation($id: ID!) {{ replayWebhookDelivery(id: $id) {{ {ERRORS} "
       "... on ReplayWebhookDeliverySuccess { delivery { id state } } } }",
       lambda w, r: {"id": r or w.hooks["one-delivery"]},
       lambda w: {"__typename": "ReplayWebhookDeliverySuccess",
                  "delivery": {"id": w.hooks["one-delivery"], "state": "PENDING"}},
       "delivery", ("NotFoundError", "NOT_FOUND")),
    Op("replayWebhookDeliveries", "webhooks:manage",
       _mutation("ReplayWebhookDeliveries", "replayWebhookDeliveries", "replayed more"),
       lambda w, r: {"input": {"subscriptionId": r or w.hooks["window"],
                               "since": (NOW - timedelta(days=1)).isoformat(),
                               "until": (NOW + timedelta(days=3)).isoformat()}},
       lambda w: {"__typename": "ReplayWebhookDeliveriesSuccess", "replayed": 3,
                  "more": False},
       "subscription", ("NotFoundError", "NOT_FOUND")),
]
DRAW_INPUT = {"name": "Matrix draw", "prizes": [{"name": "Bike", "quantity": 1}],
              "maxEntriesPerMember": 5, "pointsPerEntry": 10}
OPS += [  # prize draws (decision 033)
    Op("createDraw", "offers:manage",
       _mutation("CreateDraw", "createDraw", "draw { name status owner }"),
       lambda w, c: {"input": {**DRAW_INPUT,
                               "opensAt": (w.clock.now() + timedelta(hours=1)).isoformat(),
                               "closesAt": (w.clock.now() + timedelta(days=8)).isoformat()}},
       lambda w: {"__typename": "CreateDrawSuccess",
                  "draw": {"name": "Matrix draw", "status": "OPEN", "owner": "grocery"}},
       "customer", None),
    Op("closeDraw", "offers:manage",
       f"mutation($id: ID!) {{ closeDraw(drawId: $id) {{ {ERRORS} ... on CloseDrawSuccess "
       "{ draw { status owner } } } }",
       lambda w, c: {"id": c or w.closable.pop()},
       lambda w: {"__typename": "CloseDrawSuccess",
                  "draw": {"status": "CLOSED", "owner": "grocery"}},
       "draw", ("NotFoundError", "NOT_FOUND")),
    Op("draws", "offers:manage",
       f"query {{ draws(first: 1) {{ {ERRORS} ... on DrawList {{ draws {{ id owner }} }} }} }}",
       lambda w, c: {},
       lambda w: {"__typename": "DrawList", "draws": [
           {"id": x.draw.id, "owner": "grocery"}
           for x in list_draws(w.gw.services.engine, "grocery", 1)]},
       "customer", None, is_query=True),
    Op("draw", "offers:manage",
       f"query($id: ID!) {{ draw(id: $id) {{ {ERRORS} ... on PartnerDraw {{ id owner }} }} }}",
       lambda w, c: {"id": c or w.draws["grocery"]},
       lambda w: {"__typename": "PartnerDraw", "id": w.draws["grocery"], "owner": "grocery"},
       "draw", ("NotFoundError", "NOT_FOUND"), is_query=True),
]


def _challenge(challenge_id: str, *, snake: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": challenge_id, "name": "Four visits", "badge": "regular", "bonusPoints": 40,
        "window": "MONTH", "count": "PURCHASES", "target": 4,
        "startsAt": "2026-12-01T00:00:00+00:00"}
    if snake:
        found = {"id": challenge_id, "name": "Four visits", "badge": "regular",
                 "bonus_points": 40, "window": "month", "count": "purchases", "target": 4,
                 "starts_at": "2026-12-01T00:00:00+00:00"}
    return found


OPS += [  # challenges (decision 032)
    Op("defineChallenge", "offers:manage",
       _mutation("DefineChallenge", "defineChallenge", "challenge { version bonusPoints }")
       .replace("$input: DefineChallengeInput!", "$input: ChallengeInput!"),
       lambda w, c: {"input": _challenge(c or w.fresh("challenge"))},
       lambda w: {"__typename": "DefineChallengeSuccess",
                  "challenge": {"version": 1, "bonusPoints": 40}},
       "challenge id", None),
    Op("endChallenge", "offers:manage",
       _mutation("EndChallenge", "endChallenge", "challenge { id }"),
       lambda w, c: {"input": {"id": c or "ending-challenge", "at": _ending_at(w)}},
       lambda w: {"__typename": "EndChallengeSuccess", "challenge": {"id": "ending-challenge"}},
       "challenge", ("NotFoundError", "NOT_FOUND")),
    Op("challenges", "offers:manage",
       f"query {{ challenges {{ {ERRORS} ... on ChallengeList {{ challenges {{ id }} }} }} }}",
       lambda w, c: {},
       lambda w: {"__typename": "ChallengeList", "challenges": [
           {"id": o.challenge.id.removeprefix("grocery:")} for o in challenge_service.owned(
               w.gw.services.engine, "grocery", NOW)]},
       "customer", None, is_query=True),
]
OPS += [  # effectiveness reports (issue 13, decision 034)
    Op("campaignEffectiveness", "reports:read",
       f"query($id: ID!) {{ campaignEffectiveness(campaignId: $id) {{ {ERRORS} "
       "... on CampaignEffectiveness { campaignId owner } } }",
       lambda w, c: {"id": c or "grocery:steady"},
       lambda w: {"__typename": "CampaignEffectiveness", "campaignId": "grocery:steady",
                  "owner": "grocery"},
       "campaign", ("NotFoundError", "NOT_FOUND"), is_query=True),
    Op("campaignsEffectiveness", "reports:read",
       f"query {{ campaignsEffectiveness {{ {ERRORS} "
       "... on CampaignEffectivenessList { __typename } } }",
       lambda w, c: {},
       lambda w: {"__typename": "CampaignEffectivenessList"},
       "customer", None, is_query=True),
]
OP_IDS = [op.field for op in OPS]
# The federation fields: same scope rules, answered as top-level errors (their types are fixed
# by Apollo's subgraph specification). Another partner's customer id is null, like a missing one.
FEDERATION_OPS = [
    Op("_entities", "members:read",
       "query($r: [_Any!]!) { _entities(representations: $r) { __typename "
       "... on Member { customerId memberReference } } }",
       lambda w, c: {"r": [{"__typename": "Member", "customerId": c or "g-1"}]},
       lambda w: {"_entities": [{"__typename": "Member", "customerId": "g-1",
                                 "memberReference": _reference(w, w.member_id)}]},
       "customer", None, is_query=True),
    Op("_service", "members:read", "{ _service { sdl } }", lambda w, c: {},
       lambda w: {"_service": {"sdl": print_subgraph_sdl()}}, "customer", None, is_query=True),
]
FEDERATION_IDS = [op.field for op in FEDERATION_OPS]
EVERY_OP, EVERY_ID = OPS + FEDERATION_OPS, OP_IDS + FEDERATION_IDS


async def call(w: World, op: Op, token: str | None, resource: str | None = None
               ) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with w.grocery.http() as client:
        return await client.post("/graphql", headers=headers, json={
            "query": op.document, "variables": op.variables(w, resource)})


def answer(response: httpx.Response, op: Op) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"][op.field]
    return result


# --- the columns -------------------------------------------------------------------------------

UNUSABLE = {  # token case → why the gateway refuses it (the RFC 6750 error_description)
    "expired": "the token has expired",
    "bad signature": "the token signature is invalid",
    "alg none": "the token algorithm is not accepted; use ES256",
    "wrong typ": "the token is not an access token (typ must be at+jwt)",
    "wrong audience": "the token is meant for another audience",
    "unknown key id": "the token was signed by an unknown key",
    "revoked": "the token has been revoked",
    "disabled client": "the client of this token is disabled",
}


@pytest.mark.parametrize("op", EVERY_OP, ids=EVERY_ID)
async def test_no_token_is_a_bare_bearer_challenge(world: World, op: Op) -> None:
    before = snapshot(world.gw)
    response = await call(world, op, None)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"  # RFC 6750 §3.1: no error code
    assert response.json() == {"errors": [{
        "message": "send an access token: Authorization: Bearer <token>",
        "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert snapshot(world.gw) == before


@pytest.mark.parametrize("case", list(UNUSABLE))
@pytest.mark.parametrize("op", EVERY_OP, ids=EVERY_ID)
async def test_unusable_token_is_401_and_changes_nothing(world: World, op: Op, case: str
                                                         ) -> None:
    token = world.bad[case]
    before = snapshot(world.gw)
    if case == "expired":
        world.clock.set(world.expired_at)
    try:
        response = await call(world, op, token)
    finally:
        world.clock.set(NOW)
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{UNUSABLE[case]}"' in challenge  # refused for this reason
    assert response.json() == {"errors": [{"message": UNUSABLE[case],
                                           "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert snapshot(world.gw) == before


async def test_the_expired_token_was_good_until_it_expired(world: World) -> None:
    """The expired cells fail for the clock alone: within the leeway the token still works."""
    token = world.bad["expired"]
    world.clock.set(world.expired_at - timedelta(seconds=2))  # exp + leeway - 1 s
    try:
        response = await call(world, OPS[OP_IDS.index("member")], token)
    finally:
        world.clock.set(NOW)
    assert answer(response, OPS[OP_IDS.index("member")])["__typename"] == "Member"


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
async def test_missing_scope_is_forbidden_and_changes_nothing(world: World, op: Op) -> None:
    before = snapshot(world.gw)
    result = answer(await call(world, op, world.lacking[op.scope]), op)
    assert result == {
        "__typename": "ForbiddenError", "code": "FORBIDDEN", "scope": op.scope, "field": None,
        "message": f"this token lacks the scope '{op.scope}' that this field needs"}
    assert snapshot(world.gw) == before


def _other_partners(w: World, op: Op) -> tuple[str, str]:
    """(an id of this kind that belongs to the electronics shop, one that never existed)."""
    if op.resource == "hold":
        return w.electronics_hold, new_id("hold")
    if op.resource == "purchase":
        return "e-receipt-1", w.fresh("receipt-never-made")
    if op.resource == "campaign":  # the electronics shop's, and the coalition's
        return "electronics:theirs", w.fresh("never-made")
    if op.resource in ("campaign id", "segment id", "challenge id"):  # electronics' "theirs"
        return "theirs", w.fresh("never-made")
    if op.resource == "challenge":  # the electronics shop's
        return "theirs", w.fresh("never-made")
    if op.resource == "coupon code":  # electronics imported THEIRCODE
        return "THEIRCODE", "NEVERMADE"
    if op.resource == "subscription":
        return w.hooks["theirs"], new_id("whs")
    if op.resource == "delivery":
        return w.hooks["theirs-delivery"], new_id("dlv")
    if op.resource == "draw":  # electronics' own open draw
        return w.draws["electronics"], new_id("drw")
    # Enrol and link make the id exist at the grocery: each takes its own electronics customer.
    theirs = {"enrolCustomer": "e-solo-0", "linkCustomer": "e-solo-1"}.get(op.field, "e-7")
    return theirs, w.fresh("customer-never-seen")


def _without(value: Any, text: str) -> str:
    return json.dumps(value, sort_keys=True).replace(text, "<id>")


@pytest.mark.parametrize("op", [op for op in OPS if op.missing is not None],
                         ids=[op.field for op in OPS if op.missing is not None])
async def test_other_partners_resource_looks_exactly_missing(world: World, op: Op) -> None:
    assert op.missing is not None
    theirs, nobodys = _other_partners(world, op)
    before = snapshot(world.gw)
    token = world.scoped[op.scope]
    foreign = answer(await call(world, op, token, theirs), op)
    missing = answer(await call(world, op, token, nobodys), op)
    typename, code = op.missing
    assert (foreign["__typename"], foreign["code"]) == (typename, code)
    assert (missing["__typename"], missing["code"]) == (typename, code)
    assert _without(foreign, theirs) == _without(missing, nobodys)  # the id is all that differs
    for secret in ("electronics", "Volt", world.member_id):
        assert secret not in foreign["message"]
    assert snapshot(world.gw) == before


@pytest.mark.parametrize("op", [op for op in OPS if op.missing is None],
                         ids=[op.field for op in OPS if op.missing is None])
async def test_other_partners_customer_id_is_a_fresh_one_here(world: World, op: Op) -> None:
    """Enrol, link and preview take a customer id without reading another partner's: the
    electronics shop's "e-7" is, at the grocery, an id like any never seen."""
    theirs, nobodys = _other_partners(world, op)
    token = world.scoped[op.scope]
    if op.field == "linkCustomer":  # each link needs a member not linked at the grocery yet
        variables = [{"input": {"customerId": theirs,
                                "linkCode": _code(world, world.spare_members[1])}},
                     {"input": {"customerId": nobodys,
                                "linkCode": _code(world, world.spare_members[2])}}]
    else:
        variables = [op.variables(world, theirs), op.variables(world, nobodys)]
    results = []
    async with world.grocery.http() as client:
        for values in variables:
            response = await client.post("/graphql", headers={"Authorization": f"Bearer {token}"},
                                         json={"query": op.document, "variables": values})
            results.append(answer(response, op))
    foreign, missing = results
    if op.is_query:
        assert foreign == missing == op.success(world)
        return
    assert foreign["__typename"] == missing["__typename"] == op.success(world)["__typename"]
    if op.field in ("createCampaign", "defineSegment", "createWebhookSubscription",
                    "createDraw", "defineChallenge"):  # ours
        assert foreign == missing == op.success(world)
        return
    assert foreign["created"] is missing["created"] is True
    if op.field == "enrolCustomer":  # a new member, not the one electronics' e-solo-0 is
        assert foreign["member"]["memberReference"] == ANY_MEMBER
        assert foreign["member"]["memberReference"] not in (
            _reference(world, world.spare_members[0]), _reference(world, world.member_id))
    else:  # linked to the member who made the code, whatever electronics' e-solo-1 is
        assert foreign["member"]["memberReference"] == _reference(world, world.spare_members[1])
        assert missing["member"]["memberReference"] == _reference(world, world.spare_members[2])


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
async def test_the_operations_scope_alone_succeeds(world: World, op: Op) -> None:
    before = snapshot(world.gw)
    result = answer(await call(world, op, world.scoped[op.scope]), op)
    assert result == op.success(world)
    if op.is_query:
        assert snapshot(world.gw) == before
    else:  # so "unchanged" in the other cells is a check that could have failed
        assert snapshot(world.gw) != before


async def test_the_matrix_has_a_row_for_every_partner_operation() -> None:
    """Every root field declares its scope in its description (DESIGN §8); each one a partner
    token can hold has a row here, under that scope. (The finance-only settlement fields are
    another matrix: a partner token can never hold their scopes.)"""
    schema = build_schema(print_sdl())
    assert schema.mutation_type is not None and schema.query_type is not None
    declared = {}
    for name, definition in {**schema.query_type.fields, **schema.mutation_type.fields}.items():
        found = re.search(r"Scope: ([a-z]+:[a-z]+|admin|member)\b",
                          definition.description or "")
        assert found is not None, f"{name} does not declare its scope"
        declared[name] = found.group(1)
    partner_fields = {name: scope for name, scope in declared.items() if scope in PARTNER_SCOPES}
    assert partner_fields == {op.field: op.scope for op in EVERY_OP}, (
        "give the new field a row here")
    member_fields = {name for name, scope in declared.items() if scope == "member"}
    assert member_fields == {op.field for op in MEMBER_OPS}, "give the new member field a row"


# --- the federation rows: the same cells, answered as top-level typed errors --------------------

async def _top_level(w: World, op: Op, token: str, resource: str | None = None
                     ) -> dict[str, Any]:
    async with w.grocery.http() as client:
        response = await client.post("/graphql", headers={"Authorization": f"Bearer {token}"},
                                     json={"query": op.document,
                                           "variables": op.variables(w, resource)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _forbidden(op: Op) -> dict[str, Any]:
    return {"data": None, "errors": [{
        "message": f"this token lacks the scope '{op.scope}' that this field needs",
        "locations": [{"line": 1, "column": 23 if op.field == "_entities" else 3}],
        "path": [op.field], "extensions": {"code": "FORBIDDEN", "field": None}}]}


@pytest.mark.parametrize("op", FEDERATION_OPS, ids=FEDERATION_IDS)
async def test_federation_field_without_its_scope_is_forbidden(world: World, op: Op) -> None:
    before = snapshot(world.gw)
    assert await _top_level(world, op, world.lacking[op.scope]) == _forbidden(op)
    assert snapshot(world.gw) == before


@pytest.mark.parametrize("op", FEDERATION_OPS, ids=FEDERATION_IDS)
async def test_federation_field_with_its_scope_alone_succeeds(world: World, op: Op) -> None:
    before = snapshot(world.gw)
    assert await _top_level(world, op, world.scoped[op.scope]) == {"data": op.success(world)}
    assert snapshot(world.gw) == before


async def test_entities_of_another_partners_customer_is_null_like_a_missing_one(world: World
                                                                                 ) -> None:
    op = FEDERATION_OPS[0]
    theirs, nobodys = _other_partners(world, op)
    token = world.scoped[op.scope]
    before = snapshot(world.gw)
    for customer in (theirs, nobodys):
        assert await _top_level(world, op, token, customer) == {"data": {"_entities": [None]}}
    assert snapshot(world.gw) == before


# --- member tokens (issue 10): the member's own API is theirs alone -----------------------------

@dataclass(frozen=True)
class MemberOp:
    field: str
    document: str
    variables: dict[str, Any]


MEMBER_ERRORS = f"{ERRORS} ... on UnknownMemberError {{ code }}"
MEMBER_OPS = [
    MemberOp("viewer", f"query {{ viewer {{ {MEMBER_ERRORS} ... on Viewer {{ cardNumber }} }} }}",
             {}),
    MemberOp("unlinkBrand", f"mutation {{ unlinkBrand(partnerId: \"grocery\") {{ {ERRORS} }} }}",
             {}),
    MemberOp("setConsent", "mutation { setConsent(purpose: MARKETING, partnerId: \"grocery\", "
             f"granted: true) {{ {ERRORS} }} }}", {}),
    MemberOp("donatePoints", "mutation { donatePoints(charityPartnerId: \"charity\", points: 5, "
             f"idempotencyKey: \"matrix-donate\") {{ {ERRORS} }} }}", {}),
    MemberOp("mergeAccount", "mutation($card: String!) { mergeAccount(cardNumber: $card, "
             f"activationCode: \"ACDEFGHJKM\", idempotencyKey: \"m\") {{ {ERRORS} }} }}",
             {"card": "9000000000000008"}),
    MemberOp("exportMyData", f"mutation {{ exportMyData {{ {ERRORS} }} }}", {}),
    MemberOp("createLinkCode", f"mutation {{ createLinkCode {{ {ERRORS} }} }}", {}),
    MemberOp("eraseMe", f"mutation {{ eraseMe(remainingPoints: FORFEIT) {{ {ERRORS} }} }}", {}),
    MemberOp("recordReferral", "mutation { recordReferral(referralCode: \"ABCD-EFGH\") "
             f"{{ {ERRORS} }} }}", {}),
    MemberOp("markNotificationsRead", f"mutation {{ markNotificationsRead {{ {ERRORS} }} }}", {}),
    MemberOp("setNotificationPreferences", "mutation { setNotificationPreferences(email: false) "
             f"{{ {ERRORS} }} }}", {}),
    MemberOp("enterDraw", "mutation { enterDraw(drawId: \"drw_x\", entries: 1, "
             f"idempotencyKey: \"matrix-draw\") {{ {ERRORS} }} }}", {}),
]
MEMBER_OP_IDS = [op.field for op in MEMBER_OPS]


@dataclass
class Members:
    a: Api  # world.member_id's own token
    b: Api  # another member's
    b_card: str
    unscoped: str  # a member token for a without the member scope


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def members(world: World) -> Members:
    from tests.support.members import card_of, member_api, member_id_of

    await world.electronics.gql(ENROL % "e-member-b")  # partners never see a member id
    other = member_id_of(world.gw, "electronics", "e-member-b")
    a, b = member_api(world.gw, world.member_id), member_api(world.gw, other)
    unscoped = member_api(world.gw, world.member_id, scopes=())
    assert unscoped.token is not None
    return Members(a, b, card_of(world.gw, other), unscoped.token)


async def _raw(w: World, token: str, document: str, variables: dict[str, Any]) -> Any:
    async with w.grocery.http() as client:
        response = await client.post("/graphql", headers={"Authorization": f"Bearer {token}"},
                                     json={"query": document, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
async def test_member_token_is_forbidden_on_partner_fields(world: World, members: Members,
                                                           op: Op) -> None:
    before = snapshot(world.gw)
    assert members.a.token is not None
    result = (await _raw(world, members.a.token, op.document, op.variables(world, None)))[
        op.field]
    assert result == {
        "__typename": "ForbiddenError", "code": "FORBIDDEN", "scope": op.scope, "field": None,
        "message": f"this token lacks the scope '{op.scope}' that this field needs"}
    assert snapshot(world.gw) == before


@pytest.mark.parametrize("op", FEDERATION_OPS, ids=FEDERATION_IDS)
async def test_member_token_is_forbidden_on_federation_fields(world: World, members: Members,
                                                              op: Op) -> None:
    before = snapshot(world.gw)
    assert members.a.token is not None
    assert await _top_level(world, op, members.a.token) == _forbidden(op)
    assert snapshot(world.gw) == before


@pytest.mark.parametrize("who", ["partner token", "member token without the member scope"])
@pytest.mark.parametrize("op", MEMBER_OPS, ids=MEMBER_OP_IDS)
async def test_member_fields_refuse_other_tokens(world: World, members: Members, op: MemberOp,
                                                 who: str) -> None:
    token = world.scoped["members:read"] if who == "partner token" else members.unscoped
    before = snapshot(world.gw)
    result = (await _raw(world, token, op.document, op.variables))[op.field]
    assert result == {
        "__typename": "ForbiddenError", "code": "FORBIDDEN", "scope": "member", "field": None,
        "message": "this token lacks the scope 'member' that this field needs"}
    assert snapshot(world.gw) == before


async def test_member_a_never_sees_member_b(world: World, members: Members) -> None:
    from tests.support.members import card_of

    viewer = MEMBER_OPS[0]
    assert members.a.token is not None and members.b.token is not None
    mine = (await _raw(world, members.a.token, viewer.document, {}))["viewer"]
    theirs = (await _raw(world, members.b.token, viewer.document, {}))["viewer"]
    assert mine == {"__typename": "Viewer", "cardNumber": card_of(world.gw, world.member_id)}
    assert theirs == {"__typename": "Viewer", "cardNumber": members.b_card}
    # B's card with a guessed code answers exactly like a card that does not exist.
    merge = MEMBER_OPS[MEMBER_OP_IDS.index("mergeAccount")]
    before = snapshot(world.gw)
    real = (await _raw(world, members.a.token, merge.document, {"card": members.b_card}))
    fake = (await _raw(world, members.a.token, merge.document, merge.variables))
    assert real == fake == {"mergeAccount": {
        "__typename": "NotFoundError", "code": "NOT_FOUND", "field": "cardNumber",
        "message": "no account with this card number and activation code"}}
    assert snapshot(world.gw) == before
