"""Partner campaigns over GraphQL (offers:manage): create, publish, end, list, read and the dry
run, with real tokens on a real database; scope refusals; another partner's (or the coalition's)
campaign is invisible; every validation error names its field and writes nothing."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.core.errors import InvalidInput
from gateway.db import tables as t
from gateway.promotions import dryrun, engine, manage
from gateway.promotions import model as m
from tests.api.test_points_api import EARN, ENROL, World, earn_input, ok, world
from tests.support.harness import NOW, partner_api

ERROR = "... on Error { code message field }"
CAMPAIGN = "id version name owner funder trigger validFrom validUntil partners channels " \
           "budgetPoints maxRewards exclusive priority publishedAt definition"
CREATE = f"""mutation($input: CampaignInput!) {{ createCampaign(input: $input) {{ __typename
  ... on CreateCampaignSuccess {{ campaign {{ {CAMPAIGN} }} }} {ERROR} }} }}"""
PUBLISH = f"""mutation($id: ID!, $input: CampaignInput!) {{
  publishCampaignVersion(campaignId: $id, input: $input) {{ __typename
  ... on PublishCampaignVersionSuccess {{ campaign {{ {CAMPAIGN} }} }} {ERROR} }} }}"""
END = f"""mutation($id: ID!, $at: DateTime) {{ endCampaign(campaignId: $id, at: $at) {{ __typename
  ... on EndCampaignSuccess {{ campaign {{ id version validUntil }} }} {ERROR} }} }}"""
ONE = f"""query($id: ID!) {{ campaign(id: $id) {{ __typename
  ... on CampaignDetails {{ campaign {{ id version }} versions {{ version validUntil name }} }}
  {ERROR} }} }}"""
LIST = f"""query($first: Int!, $after: String) {{ campaigns(first: $first, after: $after) {{
  __typename ... on CampaignConnection {{ edges {{ node {{ id version }} }}
  pageInfo {{ hasNextPage endCursor }} }} {ERROR} }} }}"""
SIMULATE = f"""query($input: CampaignInput!, $days: Int!) {{
  simulateCampaign(input: $input, days: $days) {{ __typename
  ... on CampaignDryRunResult {{ operationsScanned operationsMatched membersReached bonusPoints
    cost {{ amountMinor currency exact }} budgetPoints budgetUsed
    skipped {{ reason operations }} unknownFacts operationsWithUnknownFacts }}
  {ERROR} }} }}"""


def draft(**overrides: Any) -> dict[str, Any]:
    """Spend 1,000.00 UAH or more in December: 25 bonus points."""
    return {"id": "xmas", "name": "Christmas bonus",
            "validFrom": "2026-12-01T00:00:00+02:00",
            "conditions": {"minSpendMinor": 100000},
            "effects": [{"bonusPoints": {"points": 25}}], **overrides}


def campaign_rows(w: World) -> tuple[int, int]:
    with w.gw.services.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(t.campaigns)).scalar_one(),
                conn.execute(select(func.count()).select_from(t.campaign_versions)).scalar_one())


# --- create, publish, end, read ---------------------------------------------------------------
async def test_create_publish_end_and_read_back(tmp_path: Path) -> None:
    w = await world(tmp_path)
    created = (await w.grocery.gql(CREATE, {"input": draft()}))["createCampaign"]
    assert created["__typename"] == "CreateCampaignSuccess"
    c = created["campaign"]
    assert (c["id"], c["version"], c["owner"], c["funder"], c["partners"]) == (
        "grocery:xmas", 1, "grocery", "grocery", ["grocery"])
    assert c["validFrom"] == "2026-11-30T22:00:00+00:00" and c["validUntil"] is None
    assert '"MinSpend"' in c["definition"] and '"amount_minor":100000' in c["definition"]
    assert '"points":25' in c["definition"]

    # A retry with the same definition answers the same version 1 and writes nothing.
    again = (await w.grocery.gql(CREATE, {"input": draft()}))["createCampaign"]
    assert again == created
    assert campaign_rows(w) == (1, 1)
    # The same id with another definition is a conflict naming the field.
    clash = (await w.grocery.gql(CREATE, {"input": draft(name="Other")}))["createCampaign"]
    assert clash == {"__typename": "CampaignExistsError", "code": "CAMPAIGN_EXISTS",
                     "field": "id", "message": "campaign 'grocery:xmas' already exists with "
                     "another definition: change it with publishCampaignVersion"}
    assert campaign_rows(w) == (1, 1)

    changed = draft(effects=[{"bonusPoints": {"points": 40}}],
                    limits={"budgetPoints": 4000, "perMember": [{"window": "DAY", "count": 1}]})
    published = (await w.grocery.gql(PUBLISH, {"id": "grocery:xmas", "input": changed})
                 )["publishCampaignVersion"]["campaign"]
    assert (published["version"], published["budgetPoints"]) == (2, 4000)
    ended = (await w.grocery.gql(END, {"id": "xmas", "at": "2027-01-07T00:00:00Z"}))
    assert ended["endCampaign"]["campaign"] == {
        "id": "grocery:xmas", "version": 3, "validUntil": "2027-01-07T00:00:00+00:00"}
    # Ending again by then writes nothing.
    again_end = await w.grocery.gql(END, {"id": "xmas", "at": "2027-01-07T00:00:00Z"})
    assert again_end["endCampaign"]["campaign"]["version"] == 3
    assert campaign_rows(w) == (1, 3)

    details = (await w.grocery.gql(ONE, {"id": "grocery:xmas"}))["campaign"]
    assert details["campaign"] == {"id": "grocery:xmas", "version": 3}
    assert [(v["version"], v["validUntil"]) for v in details["versions"]] == [
        (1, None), (2, None), (3, "2027-01-07T00:00:00+00:00")]


async def test_end_in_the_past_is_refused(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await w.grocery.gql(CREATE, {"input": draft()})
    past = (NOW - timedelta(seconds=1)).isoformat()
    refused = (await w.grocery.gql(END, {"id": "xmas", "at": past}))["endCampaign"]
    assert (refused["__typename"], refused["field"]) == ("InvalidInputError", "at")
    assert campaign_rows(w) == (1, 1)


async def test_campaigns_are_paged_by_id(tmp_path: Path) -> None:
    w = await world(tmp_path)
    for name in ("c", "a", "b"):
        await w.grocery.gql(CREATE, {"input": draft(id=name)})
    await w.electronics.gql(CREATE, {"input": draft(id="e")})
    first = (await w.grocery.gql(LIST, {"first": 2}))["campaigns"]
    assert [e["node"]["id"] for e in first["edges"]] == ["grocery:a", "grocery:b"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await w.grocery.gql(LIST, {"first": 2, "after": first["pageInfo"]["endCursor"]})
            )["campaigns"]
    assert [e["node"]["id"] for e in rest["edges"]] == ["grocery:c"]
    assert rest["pageInfo"]["hasNextPage"] is False
    bad = (await w.grocery.gql(LIST, {"first": 2, "after": "nonsense"}))["campaigns"]
    assert (bad["__typename"], bad["field"]) == ("InvalidInputError", "after")


# --- who may see what -------------------------------------------------------------------------
async def test_another_partners_and_the_coalitions_campaigns_are_not_found(tmp_path: Path
                                                                          ) -> None:
    w = await world(tmp_path)
    await w.grocery.gql(CREATE, {"input": draft()})
    coalition = manage.parse({**draft(id="welcome"), "partners": ["grocery", "electronics"]},
                             owner=m.COALITION)
    manage.create(w.gw.services.engine, coalition, actor="test", now=NOW)
    before = campaign_rows(w)
    missing = {"__typename": "NotFoundError", "code": "NOT_FOUND", "field": "campaignId"}
    for api, campaign_id in ((w.electronics, "grocery:xmas"), (w.grocery, "welcome"),
                             (w.grocery, "nope")):
        found = (await api.gql(ONE, {"id": campaign_id}))["campaign"]
        assert {k: found[k] for k in missing} == missing
        assert found["message"] == "no campaign of yours has this id"
        ended = (await api.gql(END, {"id": campaign_id}))["endCampaign"]
        assert {k: ended[k] for k in missing} == missing
    # electronics cannot version grocery's campaign, nor the coalition's.
    for campaign_id in ("grocery:xmas", "xmas", "welcome"):
        refused = (await w.electronics.gql(PUBLISH, {"id": campaign_id, "input": draft()})
                   )["publishCampaignVersion"]
        assert {k: refused[k] for k in missing} == missing
    # The input's id, if given, names the campaign being changed.
    wrong = (await w.grocery.gql(PUBLISH, {"id": "xmas", "input": draft(id="other")})
             )["publishCampaignVersion"]
    assert (wrong["__typename"], wrong["field"]) == ("InvalidInputError", "id")
    listed = (await w.electronics.gql(LIST, {"first": 10}))["campaigns"]
    assert listed["edges"] == []
    assert campaign_rows(w) == before


async def test_every_field_needs_offers_manage(tmp_path: Path) -> None:
    w = await world(tmp_path)
    api = await partner_api(w.gw, "grocery", ["points:earn"], name="no offers")
    forbidden = {"__typename": "ForbiddenError", "code": "FORBIDDEN", "field": None,
                 "message": "this token lacks the scope 'offers:manage' that this field needs"}
    for query, variables, root in (
            (CREATE, {"input": draft()}, "createCampaign"),
            (PUBLISH, {"id": "xmas", "input": draft()}, "publishCampaignVersion"),
            (END, {"id": "xmas"}, "endCampaign"), (ONE, {"id": "xmas"}, "campaign"),
            (LIST, {"first": 5}, "campaigns"),
            (SIMULATE, {"input": draft(), "days": 90}, "simulateCampaign")):
        assert (await api.gql(query, variables))[root] == forbidden
    assert campaign_rows(w) == (0, 0)


# --- validation -------------------------------------------------------------------------------
def _set(path: str, value: Any) -> dict[str, Any]:
    """``draft()`` with the dotted ``path`` set to ``value``."""
    body = copy.deepcopy(draft())
    keys = path.split(".")
    node: Any = body
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return body


BAD = [
    ({k: v for k, v in draft().items() if k != "id"}, "id"),
    (_set("id", "Has Space"), "id"),
    (_set("name", "  "), "name"),
    (_set("validFrom", "2026-12-01T00:00:00"), "validFrom"),
    (_set("validUntil", "2026-11-01T00:00:00Z"), "validUntil"),
    (_set("effects", []), "effects"),
    (_set("effects", [{}]), "effects[0]"),
    (_set("effects", [{"bonusPoints": {"points": 5}}, {"bonusPoints": {"points": 5},
                                                        "multiplier": {"factor": "2"}}]),
     "effects[1]"),
    (_set("effects", [{"bonusPoints": {"points": 5}}, {"multiplier": {"factor": "x"}}]),
     "effects[1].multiplier.factor"),
    (_set("effects", [{"multiplier": {"factor": "1"}}]), "effects[0].multiplier.factor"),
    (_set("effects", [{"bonusPoints": {"points": 0}}]), "effects[0].bonusPoints.points"),
    (_set("effects", [{"cashback": {"percent": "101"}}]), "effects[0].cashback.percent"),
    (_set("effects", [{"pointsDiscount": {"pointValueMinor": "0"}}]),
     "effects[0].pointsDiscount.pointValueMinor"),
    (_set("effects", [{"tillReward": {"kind": "GIFT", "code": "", "description": "mug"}}]),
     "effects[0].tillReward.code"),
    (_set("effects", [{"referralReward": {"referrerPoints": 0, "referredPoints": 0}}]),
     "effects[0].referralReward.referrerPoints"),
    (_set("conditions.minSpendMinor", 0), "conditions.minSpendMinor"),
    (_set("conditions.basketHas", {}), "conditions.basketHas.categories"),
    (_set("conditions.schedule", {"start": "25:00", "end": "10:00"}),
     "conditions.schedule.start"),
    (_set("conditions.schedule", {"start": "09:00"}), "conditions.schedule.end"),
    (_set("conditions.schedule", {"timezone": "Mars/Olympus"}), "conditions.schedule.timezone"),
    (_set("conditions.nthPurchase", 0), "conditions.nthPurchase"),
    (_set("audience.tiers", []), "audience.tiers"),
    (_set("limits.budgetPoints", 0), "limits.budgetPoints"),
    (_set("limits.perMember", [{"window": "DAY"}]), "limits.perMember[0].points"),
    (_set("limits.perMember", [{"window": "WEEK", "count": 1}, {"window": "DAY", "count": -1}]),
     "limits.perMember[1].count"),
    (_set("stacking.priority", 5000), "stacking.priority"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
async def test_every_validation_error_names_its_field(tmp_path: Path, body: dict[str, Any],
                                                      field: str) -> None:
    w = await world(tmp_path)
    result = (await w.grocery.gql(CREATE, {"input": body}))["createCampaign"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError", "INVALID_INPUT", field), result
    assert campaign_rows(w) == (0, 0)
    simulated = (await w.grocery.gql(SIMULATE, {"input": body, "days": 90}))["simulateCampaign"]
    assert (simulated["__typename"], simulated["field"]) == ("InvalidInputError", field)


@pytest.mark.parametrize(("raw", "field"), [
    ({**draft(), "colour": "red"}, "colour"),
    ({**draft(), "effects": [{"bonusPoints": {"points": 1.5}}]}, "effects[0].bonusPoints.points"),
    ({**draft(), "effects": [{"multiplier": {"factor": 1.5}}]}, "effects[0].multiplier.factor"),
    ({**draft(), "effects": "many"}, "effects"),
    ({**draft(), "partners": ["electronics"]}, "partners"),
    ({**draft(), "channels": ["phone"]}, "channels[0]"),
    ({**draft(), "conditions": {"schedule": {"days": ["funday"]}}}, "conditions.schedule.days[0]"),
    ({**draft(), "trigger": "birthday"}, "trigger"),
])
def test_file_only_shapes_are_refused_by_the_same_parser(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        manage.parse(raw, owner="grocery")
    assert refused.value.field == field


def test_a_coalition_campaign_names_its_partners() -> None:
    with pytest.raises(InvalidInput) as refused:
        manage.parse(draft(), owner=m.COALITION)
    assert refused.value.field == "partners"
    parsed = manage.parse({**draft(id="welcome"), "partners": ["grocery", "fuel"]},
                          owner=m.COALITION)
    assert (parsed.id, parsed.funder, parsed.partners) == (
        "welcome", m.COALITION, frozenset({"grocery", "fuel"}))


# --- dry run ----------------------------------------------------------------------------------
async def seeded(tmp_path: Path) -> World:
    """Grocery earns: 1,200.00 UAH at NOW (outside a 20-day window taken 30 days later), then
    20 days later 1,200.00 UAH and 300.00 UAH by g-1, and 1,500.00 UAH by g-2."""
    w = await world(tmp_path)
    await w.grocery.gql(ENROL, {"c": "g-2"})
    await ok(w.grocery, EARN, earn_input(purchaseId="old", idempotencyKey="old"))
    await w.advance(timedelta(days=20))
    for key, customer, amount in (("a", "g-1", 120000), ("b", "g-1", 30000),
                                  ("c", "g-2", 150000)):
        await ok(w.grocery, EARN, earn_input(customerId=customer, purchaseId=key,
                                             idempotencyKey=key,
                                             amount={"amountMinor": amount, "currency": "UAH"}))
    await w.advance(timedelta(days=10))
    return w


async def test_simulate_campaign_over_the_last_days(tmp_path: Path) -> None:
    w = await seeded(tmp_path)
    result = (await w.grocery.gql(SIMULATE, {"input": draft(), "days": 20}))["simulateCampaign"]
    # Two earns of 1,000.00 UAH or more: 2 x 25 points, at 0.25 EUR cents each = 12.5 cents,
    # rounded once, half-even: 12.
    assert result == {
        "__typename": "CampaignDryRunResult", "operationsScanned": 3, "operationsMatched": 2,
        "membersReached": 2, "bonusPoints": 50,
        "cost": [{"amountMinor": 12, "currency": "EUR", "exact": "25/2"}],
        "budgetPoints": None, "budgetUsed": 50, "skipped": [], "unknownFacts": [],
        "operationsWithUnknownFacts": 0}
    everything = (await w.grocery.gql(SIMULATE, {"input": draft(), "days": 90})
                  )["simulateCampaign"]
    assert (everything["operationsScanned"], everything["bonusPoints"]) == (4, 75)
    assert everything["cost"] == [{"amountMinor": 19, "currency": "EUR", "exact": "75/4"}]
    # Another partner replays only its own earns.
    other = (await w.electronics.gql(SIMULATE, {"input": draft(), "days": 90})
             )["simulateCampaign"]
    assert (other["operationsScanned"], other["bonusPoints"]) == (0, 0)
    assert campaign_rows(w) == (0, 0)


async def test_simulate_reports_facts_it_cannot_know(tmp_path: Path) -> None:
    w = await seeded(tmp_path)
    body = draft(audience={"tiers": ["gold"]},
                 conditions={"minSpendMinor": 100000, "nthPurchase": 1})
    result = (await w.grocery.gql(SIMULATE, {"input": body, "days": 20}))["simulateCampaign"]
    assert (result["operationsMatched"], result["bonusPoints"]) == (0, 0)
    assert result["unknownFacts"] == ["purchase count", "tier"]
    # The two earns of 1,000.00 UAH or more met every other condition: at most 2 reachable.
    assert result["operationsWithUnknownFacts"] == 2


async def test_dry_run_streams_in_chunks_with_the_same_totals(tmp_path: Path) -> None:
    w = await seeded(tmp_path)
    services = w.gw.services
    campaign = manage.parse(draft(), owner="grocery")
    now = services.clock.now()
    seen: list[int] = []
    chunked = dryrun.simulate_campaign(services.engine, services.rules.rule, campaign,
                                       partner_id="grocery", since=now - timedelta(days=90),
                                       until=now, chunk=1, progress=seen.append)
    whole = dryrun.simulate_campaign(services.engine, services.rules.rule, campaign,
                                     partner_id="grocery", since=now - timedelta(days=90),
                                     until=now)
    assert seen == [1, 2, 3, 4]
    assert chunked == whole
    assert (whole.bonus_points, whole.operations_matched) == (75, 3)


async def test_days_out_of_range_is_refused(tmp_path: Path) -> None:
    w = await world(tmp_path)
    for days in (0, 367):
        result = (await w.grocery.gql(SIMULATE, {"input": draft(), "days": days})
                  )["simulateCampaign"]
        assert (result["__typename"], result["field"]) == ("InvalidInputError", "days")


PLACEHOLDER_ENGINE = "PLACEHOLDER" in (engine.__doc__ or "")


@pytest.mark.skipif(PLACEHOLDER_ENGINE, reason="limits arrive with the engine (issue 12); "
                    "runs once gateway.promotions.engine is merged")
async def test_simulate_replays_the_budget_and_member_limits(tmp_path: Path) -> None:
    w = await seeded(tmp_path)
    # Three earns of 1,000.00 UAH or more over 90 days; a budget for two bonuses.
    budgeted = draft(limits={"budgetPoints": 50})
    result = (await w.grocery.gql(SIMULATE, {"input": budgeted, "days": 90})
              )["simulateCampaign"]
    assert (result["operationsMatched"], result["bonusPoints"], result["budgetUsed"]) == (
        2, 50, 50)
    assert result["skipped"] == [{"reason": "budget_exhausted", "operations": 1}]
    assert result["cost"] == [{"amountMinor": 12, "currency": "EUR", "exact": "25/2"}]
    # Once per member for life: g-1's second qualifying earn is skipped.
    once = draft(limits={"perMember": [{"window": "LIFETIME", "count": 1}]})
    result = (await w.grocery.gql(SIMULATE, {"input": once, "days": 90}))["simulateCampaign"]
    assert (result["operationsMatched"], result["membersReached"], result["bonusPoints"]) == (
        2, 2, 50)
    assert result["skipped"] == [{"reason": "member_limit", "operations": 1}]
