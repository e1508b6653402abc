"""The one resolver shape (gateway.api.results): each field answers the errors its result union
declares, read from the union, and one domain error answers the same way in every field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.api import errors as e
from gateway.api import members as members_api
from gateway.api import points as points_api
from gateway.api.results import errors_of
from gateway.auth.scopes import DEFAULT_ALLOWANCE, SCOPES, Scope
from gateway.core.errors import DomainError, ErrorCode, InvalidInput
from tests.support.harness import Api, ledger_snapshot, make_gateway, partner_api

ANSWER = "{ __typename ... on Error { code message field } }"
EARN = ("mutation { earnPoints(input: {customerId: \"g-1\", amount: {amountMinor: 1000, "
        "currency: \"UAH\"}, channel: STORE, purchaseId: \"p-1\", idempotencyKey: \"k-1\"}) "
        + ANSWER + " }")
REDEEM = ("mutation { redeemPoints(input: {customerId: \"g-1\", points: 10, basketAmount: "
          "{amountMinor: 1000, currency: \"UAH\"}, idempotencyKey: \"k-2\"}) " + ANSWER + " }")
RETURN = ("mutation { returnPurchase(input: {purchaseId: \"p-1\", amount: {amountMinor: 100, "
          "currency: \"UAH\"}, idempotencyKey: \"k-3\"}) " + ANSWER + " }")
ENROL = 'mutation { enrolCustomer(input: {customerId: "g-9"}) ' + ANSWER + " }"
CLOSE = ('mutation { closeSettlementPeriod(input: {start: "2026-01-01T00:00:00+00:00", '
         'end: "2026-02-01T00:00:00+00:00"}) ' + ANSWER + " }")


class NovelRefusal(InvalidInput):
    """A domain error no GraphQL type was written for: it answers as its nearest ancestor."""

    code = ErrorCode.INVALID_INPUT


class Stray(DomainError):
    """A domain error outside every branch any union declares: a top-level error with its
    code (a domain error is never masked), the same in every field."""

    code = ErrorCode.CONFLICT


def _raise(error: DomainError) -> Any:
    def service(*_: Any, **__: Any) -> Any:
        raise error
    return service


def test_errors_are_read_from_each_result_union() -> None:
    # What the hand-kept tuples beside the unions used to say, now derived from the unions.
    keyed = {e.InvalidInputError, e.ForbiddenError, e.RateLimitedError,
             e.IdempotencyKeyReusedError, e.InvalidAmountError}
    assert set(points_api._EARN.allowed) == keyed | {
        e.UnknownMemberError, e.CurrencyMismatchError, e.RuleNotInForceError,
        e.CapExceededError, e.PurchaseAlreadyRecordedError}
    assert set(points_api._VOID.allowed) == keyed | {e.NotFoundError, e.HoldAlreadySettledError}
    assert set(members_api._ENROL.allowed) == {e.InvalidInputError, e.ForbiddenError,
                                               e.RateLimitedError, e.ReferralRefusedError,
                                               e.SelfReferralError, e.AlreadyReferredError}
    assert errors_of(points_api.PreviewEarnResult) == points_api._PREVIEW.allowed
    with pytest.raises(TypeError):
        errors_of(points_api.EarnPointsSuccess)


def test_settlement_errors_are_in_the_one_map() -> None:
    from gateway.settlement.errors import PeriodClosed, StatementMalformed

    closed = e.to_error(PeriodClosed("closed already", period_id="sp-1"),
                        (e.PeriodClosedError, e.InvalidInputError))
    assert isinstance(closed, e.PeriodClosedError)
    assert (closed.code, closed.period_id, closed.field) == (ErrorCode.PERIOD_CLOSED, "sp-1",
                                                            "start")
    # Where a union lacks the precise type, the nearest ancestor it declares answers.
    malformed = e.to_error(StatementMalformed("bad", line=3, column="points"),
                           (e.InvalidInputError,))
    assert type(malformed) is e.InvalidInputError
    assert malformed.code == ErrorCode.STATEMENT_MALFORMED


async def test_an_unknown_domain_error_maps_the_same_way_everywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.ledger import enrolment as members_service
    from gateway.ledger import service as ledger_service
    from gateway.settlement import service as settlement_service

    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    created = gw.auth.clients.create(name="finance", kind="finance", partner_id=None,
                                     scopes=["settlement:read", "settlement:close"],
                                     actor="test")
    finance = Api(gw, None, created.client.client_id, created.secret)
    await finance.fetch_token()
    fields = [(grocery, EARN, "earnPoints", ledger_service, "earn_points"),
              (grocery, REDEEM, "redeemPoints", ledger_service, "redeem_points"),
              (grocery, RETURN, "returnPurchase", ledger_service, "return_purchase"),
              (grocery, ENROL, "enrolCustomer", members_service, "enrol_customer"),
              (finance, CLOSE, "closeSettlementPeriod", settlement_service, "close_period")]
    before = ledger_snapshot(gw)
    for api, document, name, module, function in fields:
        monkeypatch.setattr(module, function,
                            _raise(NovelRefusal("refused for a new reason", field="x")))
        answer = (await api.gql(document))[name]
        assert answer == {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                          "message": "refused for a new reason", "field": "x"}, name

        monkeypatch.setattr(module, function, _raise(Stray("no union declares this")))
        body = (await api.post(document)).json()
        assert body["data"] is None, name
        [error] = body["errors"]
        assert (error["message"], error["extensions"]["code"]) == (
            "no union declares this", "CONFLICT"), name
    assert ledger_snapshot(gw) == before


def test_scopes_are_an_enum_of_their_wire_strings() -> None:
    assert [scope.name for scope in SCOPES] == [scope.value for scope in Scope]
    assert Scope.POINTS_EARN == "points:earn" and hash(Scope.POINTS_EARN) == hash("points:earn")
    assert "points:earn" in DEFAULT_ALLOWANCE["partner"]
    assert Scope.POINTS_EARN in frozenset({"points:earn"})
    assert sorted(DEFAULT_ALLOWANCE["finance"]) == ["reports:read", "settlement:close",
                                                    "settlement:read"]
    assert all(type(str(scope)) is str and str(scope) == scope.value for scope in Scope)
