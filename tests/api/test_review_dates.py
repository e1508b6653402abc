"""Date-times that exist in ISO 8601 but not in UTC (p13-review of issue 12).

``9999-12-31T23:59:59-14:00`` and ``0001-01-01T00:00:00+14:00`` parse as offset date-times,
but in UTC (where every date-time is stored and compared) they fall past ``datetime.max`` or
before ``datetime.min``. Given as a coupon's ``expiresAt``, a campaign's ``validFrom`` or
``validUntil`` or an earn's ``occurredAt`` they failed as an "Unexpected error." (a 500 in
the result) after the checks had passed; each is now ``InvalidInputError`` naming the field,
and nothing is written. The last representable instants in UTC still work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db import tables as t
from tests.api.test_coupons_api import CREATE, EARN, IMPORT, ISSUE, coupon_world, spring

PAST_MAX = "9999-12-31T23:59:59-14:00"
BEFORE_MIN = "0001-01-01T00:00:00+14:00"
EARN_INPUT = {"customerId": "g-1", "amount": {"amountMinor": 120_000, "currency": "UAH"},
              "channel": "STORE", "purchaseId": "late-1", "idempotencyKey": "late-1"}

CASES = [
    (ISSUE, "issueCoupons", {"campaignId": "spring", "count": 1, "expiresAt": PAST_MAX},
     "input.expiresAt"),
    (ISSUE, "issueCoupons", {"campaignId": "spring", "count": 1, "expiresAt": BEFORE_MIN},
     "input.expiresAt"),
    (IMPORT, "importCoupons", {"campaignId": "spring", "codes": ["LATE1"], "expiresAt": PAST_MAX},
     "input.expiresAt"),
    (CREATE, "createCampaign", spring(id="late", validUntil=PAST_MAX), "input.validUntil"),
    (CREATE, "createCampaign", spring(id="late", validFrom=PAST_MAX), "input.validFrom"),
    (CREATE, "createCampaign", spring(id="late", validFrom=BEFORE_MIN), "input.validFrom"),
    (EARN, "earnPoints", {**EARN_INPUT, "occurredAt": BEFORE_MIN}, "input.occurredAt"),
    (EARN, "earnPoints", {**EARN_INPUT, "occurredAt": PAST_MAX}, "input.occurredAt"),
]


def rows(w: Any) -> tuple[int, int, int]:
    with w.gw.services.engine.connect() as conn:
        return tuple(int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                     for table in (t.coupons, t.campaigns, t.operations))  # type: ignore[return-value]


@pytest.mark.parametrize(("query", "root", "values", "field"), CASES,
                         ids=[f"{i}-{c[1]}-{c[3]}" for i, c in enumerate(CASES)])
async def test_a_date_time_outside_utc_is_a_typed_error(tmp_path: Path, query: str, root: str,
                                                        values: dict[str, Any],
                                                        field: str) -> None:
    w = await coupon_world(tmp_path)
    before = rows(w)
    answer = (await w.grocery.gql(query, {"input": values}))[root]
    assert (answer["__typename"], answer["code"], answer["field"]) == (
        "InvalidInputError", "INVALID_INPUT", field), answer
    assert answer["message"] == f"{field} is outside the years 1 to 9999 in UTC"
    assert rows(w) == before


async def test_the_last_instant_in_utc_is_still_a_valid_expiry(tmp_path: Path) -> None:
    w = await coupon_world(tmp_path)
    answer = (await w.grocery.gql(ISSUE, {"input": {
        "campaignId": "spring", "count": 2, "expiresAt": "9999-12-31T23:59:59.999999Z"}}))
    assert answer["issueCoupons"]["__typename"] == "IssueCouponsSuccess"
    assert len(answer["issueCoupons"]["codes"]) == 2
    assert rows(w)[0] == 2
