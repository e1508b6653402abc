"""Promotions and funding over GraphQL with real tokens: the report's promotion lines per
funder, and ``funderExposure`` (settlement:read; a partner-bound finance client sees its own
funder row only; a partner client without the scope is refused)."""

from __future__ import annotations

from pathlib import Path

from gateway.ledger.runner import transact
from gateway.promotions import funding
from gateway.settlement import exposure
from tests.settlement.test_api import JANUARY, finance
from tests.settlement.test_promotions import _january
from tests.support.harness import partner_api

PROMOTIONS = """query($s: DateTime!, $e: DateTime!) { settlementReport(start: $s, end: $e) {
  __typename ... on SettlementReport { promotions { funder points returnedPoints netPoints
    netMinor paidByFunder } coalition { promotionIncomeMinor bonusMinor bonusReturnsMinor }
    partners { partnerId figures { promotionPoints promotionMinor } } } } }"""
EXPOSURE = """{ funderExposure { __typename ... on FunderExposureList { currency funders {
  funder mode policy limitPoints fundedPoints issuedPoints reversedPoints exposurePoints
  leftPoints exposureMinor leftMinor } } ... on Error { code } } }"""


async def test_promotion_lines_over_graphql(tmp_path: Path) -> None:
    gw, _ = _january(tmp_path)
    coalition = await finance(gw, None, ["settlement:read"])
    r = (await coalition.gql(PROMOTIONS, JANUARY))["settlementReport"]
    assert [(p["funder"], p["netPoints"], p["netMinor"], p["paidByFunder"])
            for p in r["promotions"]] == [("electronics", "30", "33", True),
                                          ("grocery", "4", "2", True),
                                          ("coalition", "20", "22", False)]
    assert r["coalition"] == {"promotionIncomeMinor": "35", "bonusMinor": "33",
                              "bonusReturnsMinor": "11"}
    grocery = await finance(gw, "grocery", ["settlement:read"])
    own = (await grocery.gql(PROMOTIONS, JANUARY))["settlementReport"]
    assert [p["funder"] for p in own["promotions"]] == ["grocery"]
    assert own["partners"] == [{"partnerId": "grocery", "figures": {
        "promotionPoints": "7", "promotionMinor": "2"}}]


async def test_funder_exposure_scoped_to_the_caller(tmp_path: Path) -> None:
    gw, clock = _january(tmp_path)
    s = gw.services
    for funder, mode, limit in (("electronics", "credit", 100), ("grocery", "prepaid", None),
                                ("coalition", "prepaid", None)):
        exposure.set_terms(s.engine, s.clock, funder, mode=mode, policy=None,
                           limit_points=limit, actor="finance:ana")
    exposure.top_up(s.engine, s.clock, "grocery", 40, actor="finance:ana")
    now = clock.now()
    transact(s.engine, lambda conn: funding.charge(conn, "electronics", 80, now))
    transact(s.engine, lambda conn: funding.release(conn, "electronics", 5, now))
    coalition = await finance(gw, None, ["settlement:read"])
    seen = (await coalition.gql(EXPOSURE))["funderExposure"]
    assert seen["currency"] == "EUR"
    rows = {f["funder"]: f for f in seen["funders"]}
    assert list(rows) == ["coalition", "electronics", "grocery"]
    # electronics: 80 issued, 5 reversed, no repayment: exposure 75 x 1.1 = 82.5 -> CEIL 83;
    # left 100 - 75 = 25 x 1.1 = 27.5 -> FLOOR 27.
    e = rows["electronics"]
    assert (e["mode"], e["limitPoints"], e["issuedPoints"], e["reversedPoints"],
            e["exposurePoints"], e["leftPoints"], e["exposureMinor"], e["leftMinor"]) == (
        "credit", "100", "80", "5", "75", "25", "83", "27")
    assert (rows["grocery"]["leftPoints"], rows["grocery"]["leftMinor"]) == ("40", "10")
    assert rows["coalition"]["exposureMinor"] is None
    grocery = await finance(gw, "grocery", ["settlement:read"])
    own = (await grocery.gql(EXPOSURE))["funderExposure"]
    assert [f["funder"] for f in own["funders"]] == ["grocery"]
    shop = await partner_api(gw, "electronics")
    refused = (await shop.gql(EXPOSURE))["funderExposure"]
    assert refused == {"__typename": "ForbiddenError", "code": "FORBIDDEN"}
