"""Effectiveness reports over GraphQL and as pages, with real tokens (decision 034).

A partner reads its own campaign's effectiveness (exact figures), gets another partner's
campaign answered exactly like a missing one, and cannot read the programme report; a
coalition-wide finance client reads the programme report (JSON and CSV page) and every
campaign; a token without the scope is refused with the typed error naming it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.core.money import Money
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.promotions.holdout import held_out
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import Api, make_gateway, partner_api

pytestmark = pytest.mark.asyncio

EFFECTIVENESS = """query($id: ID!) { campaignEffectiveness(campaignId: $id) {
  __typename ... on Error { code message field }
  ... on CampaignEffectiveness { campaignId owner holdoutPercent membersReached pointsIssued
    costMinor settlementCurrency treatedMembers holdoutMembers
    uplift { currency treatedMembers holdoutMembers treatedSpendMinor holdoutSpendMinor } } } }"""
PROGRAMME = """query { programmeReport(start: "2026-11-01T00:00:00Z", end: "2026-12-01T00:00:00Z") {
  __typename ... on Error { code message }
  ... on ProgrammeReport { activeMembers crossBrandMembers earnedPoints burnedPoints
    outstandingPoints partners { partnerId earnedPoints outstandingPoints }
    cohorts { month members active } } } }"""


async def finance(gw: Gateway, partner_id: str | None, scopes: list[str]) -> Api:
    created = gw.auth.clients.create(name=f"finance {partner_id}", kind="finance",
                                     partner_id=partner_id, scopes=scopes, actor="test")
    api = Api(gw, partner_id, created.client.client_id, created.secret)
    await api.fetch_token()
    return api


def _world(tmp_path: Path) -> tuple[Gateway, int, int]:
    """Ten grocery members, 30 % held out of "spring". Member ids are random, so the holdout
    drawn from them is too: a world where nobody (2.8 % of runs) or everybody is held out has
    no uplift to show and is built again."""
    for attempt in range(20):
        made = _one_world(tmp_path / f"world-{attempt}")
        if 0 < made[2] < 10:
            return made
    raise AssertionError("20 worlds in a row held out nobody or everybody")


def _one_world(tmp_path: Path) -> tuple[Gateway, int, int]:
    tmp_path.mkdir()
    gw = make_gateway(tmp_path)
    publish(gw, replace(bonus_campaign("grocery:spring", 10), holdout_percent=30),
            bonus_campaign("fuel:theirs", 5, partner="fuel", partners=frozenset({"fuel"})))
    held = 0
    for n in range(10):
        member = enrol_customer(gw.services.engine, gw.services.clock, "grocery",
                                f"c-{n}").member_id
        held += held_out("grocery:spring", member, 30)
        earn_points(gw.services.ledger, EarnPoints("grocery", f"c-{n}", Money(120_000, "UAH"),
                                                   "store", f"p-{n}", f"k-{n}"))
    return gw, 10 - held, held


async def test_partner_reads_its_own_campaign_only(tmp_path: Path) -> None:
    gw, treated, held = _world(tmp_path)
    grocery = await partner_api(gw, "grocery")
    data = (await grocery.gql(EFFECTIVENESS, {"id": "grocery:spring"}))["campaignEffectiveness"]
    assert data == {
        "__typename": "CampaignEffectiveness", "campaignId": "grocery:spring",
        "owner": "grocery", "holdoutPercent": 30, "membersReached": str(treated),
        "pointsIssued": str(10 * treated), "costMinor": str(-(-10 * treated // 4)),
        "settlementCurrency": "EUR", "treatedMembers": str(treated), "holdoutMembers": str(held),
        "uplift": [{"currency": "UAH", "treatedMembers": treated, "holdoutMembers": held,
                    "treatedSpendMinor": str(120_000 * treated),
                    "holdoutSpendMinor": str(120_000 * held)}]}
    theirs = (await grocery.gql(EFFECTIVENESS, {"id": "fuel:theirs"}))["campaignEffectiveness"]
    missing = (await grocery.gql(EFFECTIVENESS, {"id": "fuel:nothing"}))["campaignEffectiveness"]
    assert theirs == {"__typename": "NotFoundError", "code": "NOT_FOUND",
                      "message": "no campaign of yours has this id", "field": "campaignId"}
    assert missing == theirs  # another partner's campaign looks exactly like a missing one
    refused = (await grocery.gql(PROGRAMME))["programmeReport"]
    assert refused["__typename"] == "ForbiddenError" and "settlement:read" in refused["message"]


async def test_without_reports_read_is_forbidden(tmp_path: Path) -> None:
    gw, _, _ = _world(tmp_path)
    grocery = await partner_api(gw, "grocery", ["offers:manage"])
    data = (await grocery.gql(EFFECTIVENESS, {"id": "grocery:spring"}))["campaignEffectiveness"]
    assert data == {"__typename": "ForbiddenError", "code": "FORBIDDEN", "field": None,
                    "message": "this token lacks the scope 'reports:read' that this field needs"}


async def test_coalition_finance_reads_the_programme_and_every_campaign(tmp_path: Path) -> None:
    gw, treated, _ = _world(tmp_path)
    coalition = await finance(gw, None, ["settlement:read", "reports:read"])
    data = (await coalition.gql(PROGRAMME))["programmeReport"]
    assert data == {
        "__typename": "ProgrammeReport", "activeMembers": "10", "crossBrandMembers": "0",
        "earnedPoints": str(1200 + 10 * treated), "burnedPoints": "0",
        "outstandingPoints": str(1200 + 10 * treated),
        "partners": [{"partnerId": "grocery", "earnedPoints": str(1200 + 10 * treated),
                      "outstandingPoints": str(1200 + 10 * treated)}],
        "cohorts": [{"month": "2026-11", "members": "10", "active": ["10"]}]}
    fuel = (await coalition.gql(EFFECTIVENESS, {"id": "fuel:theirs"}))["campaignEffectiveness"]
    assert fuel["membersReached"] == "0" and fuel["owner"] == "fuel"
    async with coalition.http() as client:
        page = await client.get("/reports/programme", params={
            "start": "2026-11-01T00:00:00+00:00", "end": "2026-12-01T00:00:00+00:00",
            "format": "csv"}, headers={"Authorization": f"Bearer {coalition.token}"})
        html = await client.get("/reports/campaigns",
                                headers={"Authorization": f"Bearer {coalition.token}"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/csv")
    assert f"partner,grocery,{1200 + 10 * treated},0,0,0,{1200 + 10 * treated},," in page.text
    assert "cohort,2026-11,,,,,,10,10" in page.text
    assert html.status_code == 200 and "grocery:spring" in html.text and "plotly" in html.text


async def test_partner_cannot_open_the_programme_page(tmp_path: Path) -> None:
    gw, _, _ = _world(tmp_path)
    grocery = await finance(gw, "grocery", ["settlement:read"])
    async with grocery.http() as client:
        page = await client.get("/reports/programme", params={
            "start": "2026-11-01T00:00:00+00:00", "end": "2026-12-01T00:00:00+00:00"},
            headers={"Authorization": f"Bearer {grocery.token}"})
    assert page.status_code == 403 and page.json()["code"] == "FORBIDDEN"
