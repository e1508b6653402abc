"""Trusted documents (gateway.api.documents): registered in advance, sent by id in either
form, refused with a typed code when unknown or (mode ``only``) unregistered; a refused request
changes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.documents import InvalidDocument, read_manifest, register
from gateway.api.schema import build_schema, validation_rules
from gateway.app import Gateway, build
from gateway.cli import main
from gateway.core.clock import FixedClock
from gateway.core.ids import PartnerId
from gateway.db.documents import EVERY_PARTNER, listed
from gateway.settings import Limits
from tests.support.harness import (
    NOW,
    Api,
    ledger_snapshot,
    partner_api,
    track,
)
from tests.support.harness import (
    test_settings as settings_for,
)

ENROL = """mutation Enrol($id: ID!) { enrolCustomer(input: {customerId: $id}) {
  __typename ... on EnrolCustomerSuccess { created member { customerId } } } }"""
MEMBER = """query Member($id: ID!) { member(customerId: $id) { __typename } }"""
HISTORY = """query History($id: ID!, $first: Int!) { member(customerId: $id) {
  ... on Member { history(first: $first) { edges { cursor } } } } }"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def gateway(tmp_path: Path, mode: str = "allow") -> Gateway:
    gw = build(settings_for(tmp_path, trusted_documents=mode), clock=FixedClock(NOW))
    track(gw.services.engine)
    return gw


def put(gw: Gateway, partner: str, *documents: tuple[str | None, str]) -> list[Any]:
    settings = gw.services.settings
    schema = build_schema(settings)._schema
    return register(gw.services.engine, schema, list(documents), PartnerId(partner),
                    max_tokens=settings.limits.max_tokens, rules=validation_rules(settings.limits),
                    at=NOW, actor="test")


async def send(api: Api, body: dict[str, Any]) -> httpx.Response:
    async with api.http() as client:
        return await client.post("/graphql", json=body,
                                 headers={"Authorization": f"Bearer {api.token}"})


async def test_a_registered_document_runs_by_id_in_both_forms(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    [done] = put(gw, "grocery", (None, ENROL))
    assert (done.id, done.name, done.created) == (sha(ENROL), "Enrol", True)
    assert put(gw, "grocery", (None, ENROL))[0].created is False  # registering again: a no-op

    by_id = await send(grocery, {"documentId": f"sha256:{sha(ENROL)}",
                                 "variables": {"id": "g-1"}})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["data"]["enrolCustomer"] == {
        "__typename": "EnrolCustomerSuccess", "created": True, "member": {"customerId": "g-1"}}
    apollo = await send(grocery, {"variables": {"id": "g-1"}, "extensions": {
        "persistedQuery": {"version": 1, "sha256Hash": sha(ENROL)}}})
    assert apollo.json()["data"]["enrolCustomer"]["created"] is False
    bare = await send(grocery, {"documentId": sha(ENROL), "variables": {"id": "g-2"}})
    assert bare.json()["data"]["enrolCustomer"]["created"] is True
    # The text and its id together are fine when they agree, refused when they do not.
    both = await send(grocery, {"query": ENROL, "documentId": sha(ENROL),
                                "variables": {"id": "g-3"}})
    assert both.json()["data"]["enrolCustomer"]["created"] is True
    before = ledger_snapshot(gw)
    mismatch = await send(grocery, {"query": MEMBER, "documentId": sha(ENROL),
                                    "variables": {"id": "g-4"}})
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert ledger_snapshot(gw) == before
    # Apollo's automatic persisted queries: the hash alone (not found), then text and hash;
    # an unregistered text then runs as any text in mode "allow" (and is not registered).
    apq = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(MEMBER)}},
           "variables": {"id": "g-1"}}
    missing = await send(grocery, apq)
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    retried = await send(grocery, {**apq, "query": MEMBER})
    assert retried.json()["data"]["member"] == {"__typename": "Member"}
    assert [d.name for d in listed(gw.services.engine)] == ["Enrol"]


async def test_an_unknown_id_is_a_typed_error_and_changes_nothing(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    fuel = await partner_api(gw, "fuel")
    put(gw, "grocery", (None, ENROL))
    before = ledger_snapshot(gw)
    for body in ({"documentId": sha("query { __typename }")},
                 {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
                 {"documentId": "not-a-hash"},
                 # Another partner's document looks exactly like a missing one.
                 {"documentId": sha(ENROL), "variables": {"id": "f-1"}}):
        answer = await (send(fuel, body) if body.get("variables") else send(grocery, body))
        assert answer.status_code == 400, body
        [error] = answer.json()["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", body
        assert error.get("message")
    assert ledger_snapshot(gw) == before


async def test_only_mode_runs_registered_documents_alone(tmp_path: Path) -> None:
    gw = gateway(tmp_path, "only")
    grocery = await partner_api(gw, "grocery")
    put(gw, "grocery", (None, ENROL))
    put(gw, EVERY_PARTNER, (None, MEMBER))
    before = ledger_snapshot(gw)

    refused = await grocery.post(ENROL.replace("Enrol(", "Other("), {"id": "g-1"})
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    other = ENROL.replace("Enrol(", "Other(")
    with_hash = await send(grocery, {"query": other, "documentId": sha(other),
                                     "variables": {"id": "g-1"}})
    assert with_hash.status_code == 400
    assert with_hash.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert ledger_snapshot(gw) == before

    # The registered text itself, sent in full, is the registered document.
    sent = await grocery.post(ENROL, {"id": "g-1"})
    assert sent.json()["data"]["enrolCustomer"]["created"] is True
    by_id = await send(grocery, {"documentId": sha(ENROL), "variables": {"id": "g-2"}})
    assert by_id.json()["data"]["enrolCustomer"]["created"] is True
    shared = await send(grocery, {"documentId": sha(MEMBER), "variables": {"id": "g-1"}})
    assert shared.json()["data"]["member"] == {"__typename": "Member"}


async def test_limits_hold_for_registered_documents(tmp_path: Path) -> None:
    gw = gateway(tmp_path, "only")
    grocery = await partner_api(gw, "grocery")
    put(gw, "grocery", (None, ENROL), (None, HISTORY))
    await send(grocery, {"documentId": sha(ENROL), "variables": {"id": "g-1"}})
    # Page sizes are checked at run time, whatever brought the document.
    big = await send(grocery, {"documentId": sha(HISTORY), "variables": {"id": "g-1",
                                                                         "first": 1000}})
    assert big.status_code == 200
    assert big.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    # One mutation per operation, syntax and schema validity are checked at registration.
    two = "mutation { a: enrolCustomer(input: {customerId: \"x\"}) { __typename } " \
          "b: enrolCustomer(input: {customerId: \"y\"}) { __typename } }"
    for bad, reason in ((two, "may run one mutation"), ("query {", "not a GraphQL document"),
                        ("{ nothing }", "Cannot query field"),
                        ("query A { __typename } query B { __typename }", "exactly one")):
        with pytest.raises(InvalidDocument, match=reason):
            put(gw, "grocery", (None, bad))
    assert len(listed(gw.services.engine)) == 2


async def test_rate_limits_charge_requests_by_id(tmp_path: Path) -> None:
    one = Limits(rate_limit_per_minute=1, rate_limit_burst=1)
    gw = build(settings_for(tmp_path, limits=one, trusted_documents="only"), clock=FixedClock(NOW))
    track(gw.services.engine)
    grocery = await partner_api(gw, "grocery")
    put(gw, "grocery", (None, MEMBER))
    first = await send(grocery, {"documentId": sha(MEMBER), "variables": {"id": "g-1"}})
    assert first.status_code == 200, first.text
    second = await send(grocery, {"documentId": sha(MEMBER), "variables": {"id": "g-1"}})
    assert second.status_code == 429
    assert second.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_manifests_from_apollo_and_relay(tmp_path: Path) -> None:
    gw = gateway(tmp_path, "only")
    fuel = await partner_api(gw, "fuel")
    apollo = json.dumps({"format": "apollo-persisted-query-manifest", "version": 1,
                         "operations": [{"id": sha(ENROL), "name": "Enrol", "type": "mutation",
                                         "body": ENROL}]})
    relay = json.dumps({sha(MEMBER): MEMBER})
    assert [d.name for d in put(gw, "fuel", *read_manifest(apollo))] == ["Enrol"]
    assert [d.name for d in put(gw, "fuel", *read_manifest(relay))] == ["Member"]
    answer = await send(fuel, {"documentId": sha(MEMBER), "variables": {"id": "f-1"}})
    assert answer.json()["data"]["member"]["__typename"] == "UnknownMemberError"

    wrong = json.dumps({"0" * 64: HISTORY, sha(HISTORY): HISTORY})
    with pytest.raises(InvalidDocument, match="not the SHA-256"):
        put(gw, "fuel", *read_manifest(wrong))
    assert len(listed(gw.services.engine, PartnerId("fuel"))) == 2  # nothing of it stored
    with pytest.raises(InvalidDocument, match="no partner"):
        put(gw, "nobody", (None, MEMBER))


def test_the_cli_registers_a_file_and_a_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    gw = gateway(tmp_path)
    monkeypatch.setenv("DATABASE_URL", gw.services.settings.database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    document = tmp_path / "enrol.graphql"
    document.write_text(ENROL)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({sha(MEMBER): MEMBER}))

    assert main(["documents", "register", str(document), "--partner", "grocery"]) == 0
    assert main(["documents", "register", str(manifest), "--every-partner"]) == 0
    assert main(["documents", "register", str(manifest), "--partner", "nobody"]) == 2
    out = capsys.readouterr()
    assert f"sha256:{sha(ENROL)} Enrol registered" in out.out
    assert f"sha256:{sha(MEMBER)} Member registered" in out.out
    assert "no partner 'nobody'" in out.err
    assert [(d.partner_id, d.name) for d in listed(gw.services.engine)] == [
        ("", "Member"), ("grocery", "Enrol")]


def test_the_mode_is_a_setting_allow_by_default() -> None:
    from gateway.settings import Settings

    assert Settings.from_env({}).trusted_documents == "allow"
    assert Settings.from_env({"GATEWAY_ENV": "production"}).trusted_documents == "allow"
    assert Settings.from_env({"GATEWAY_TRUSTED_DOCUMENTS": "only"}).trusted_documents == "only"
    with pytest.raises(ValueError, match="GATEWAY_TRUSTED_DOCUMENTS"):
        Settings.from_env({"GATEWAY_TRUSTED_DOCUMENTS": "strict"})
