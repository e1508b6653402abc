"""Prize draws end to end over HTTP (decision 033, docs/draws.md): the grocery creates a draw
through GraphQL (bad terms refused naming the field), members earn entries with purchases and
buy more with points through the member API, the grocery closes it, and the public proof page
is checked by a verifier written here from the documented algorithm alone (nothing imported
from gateway.draws): the commitment matches the revealed seed, the entry list its hash, and the
winners recompute. ``gateway draws verify`` accepts the proof and refuses a tampered one."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.draws import cli
from tests.support.draws import drain
from tests.support.harness import NOW, Api, ledger_snapshot, make_gateway, partner_api
from tests.support.members import member_api, member_id_of

pytestmark = pytest.mark.asyncio

ERRORS = "__typename ... on Error { code message field }"
CREATE = f"""mutation($input: CreateDrawInput!) {{ createDraw(input: $input) {{ {ERRORS}
  ... on CreateDrawSuccess {{ draw {{ id status commitment seed owner proofUrl }} }} }} }}"""
ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) { __typename } }"""
EARN = """mutation($c: ID!, $minor: MinorUnits!, $p: String!) { earnPoints(input: {customerId: $c,
  amount: {amountMinor: $minor, currency: "UAH"}, channel: STORE, purchaseId: $p,
  idempotencyKey: $p}) { __typename } }"""
ENTER = f"""mutation($d: ID!, $n: Int!, $k: String!) {{ enterDraw(drawId: $d, entries: $n,
  idempotencyKey: $k) {{ {ERRORS} ... on EnterDrawSuccess {{ entries totalEntries pointsSpent
  available }} ... on DrawEntryLimitError {{ limit held requested }}
  ... on InsufficientPointsError {{ requested available }} }} }}"""
VIEWER = """{ viewer { ... on Viewer { wallet { available } draws { id status myEntries
  myEntrantId won winners { prize entrant } } } } }"""
CLOSE = f"""mutation($d: ID!) {{ closeDraw(drawId: $d) {{ {ERRORS}
  ... on CloseDrawSuccess {{ draw {{ status entries entrants seed entryListHash
  winners {{ position prize entrant }} }} }} }} }}"""


def terms(**changes: Any) -> dict[str, Any]:
    """2 entries per purchase of 500.00 UAH or more, 10 points an entry, 5 per member; a bike
    and two vouchers, one prize per member."""
    values: dict[str, Any] = {
        "name": "Autumn bike draw", "opensAt": NOW.isoformat(),
        "closesAt": (NOW + timedelta(days=7)).isoformat(),
        "prizes": [{"name": "Bike", "quantity": 1}, {"name": "Voucher", "quantity": 2}],
        "maxEntriesPerMember": 5, "entriesPerPurchase": 2,
        "minSpend": {"amountMinor": 50_000, "currency": "UAH"}, "pointsPerEntry": 10}
    values.update(changes)
    return values


# --- the independent verifier (from docs/draws.md only) -------------------------------------------
def recompute(proof: dict[str, Any]) -> list[tuple[str, str]]:
    seed = bytes.fromhex(proof["seed"])
    listed = sorted((e["entrant"], e["entries"]) for e in proof["entries"])
    text = "".join(f"{entrant}:{count}\n" for entrant, count in listed)
    list_hash = hashlib.sha256(text.encode("utf-8")).digest()
    assert list_hash.hex() == proof["entry_list_hash"]
    tickets = [entrant for entrant, count in listed for _ in range(count)]
    prizes = [p["name"] for p in proof["prizes"] for _ in range(p["quantity"])]
    won, k = [], 0
    for prize in prizes:
        if not tickets:
            break
        n = len(tickets)
        limit = (1 << 256) // n * n  # the largest multiple of n not above 2**256
        while True:
            h = int.from_bytes(hashlib.sha256(seed + list_hash + k.to_bytes(8, "big")).digest(),
                               "big")
            k += 1
            if h < limit:
                break
        winner = tickets[h % n]
        won.append((prize, winner))
        if proof["one_prize_per_member"]:
            tickets = [t for t in tickets if t != winner]
        else:
            tickets.pop(h % n)
    return won


def guide_verifier() -> Any:
    """The ``winners(proof)`` function printed in docs/draws.md, run as written."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "draws.md").read_text()
    code = guide.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(code, scope)  # our own documentation, run as printed
    return scope["winners"]


async def world(tmp_path: Path) -> tuple[Gateway, FixedClock, Api]:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    return gw, clock, await partner_api(gw, "grocery")


async def test_bad_terms_are_refused_naming_the_field(tmp_path: Path) -> None:
    _, _, grocery = await world(tmp_path)
    cases = {
        "closesAt": terms(closesAt=NOW.isoformat()),
        "opensAt": terms(opensAt=(NOW - timedelta(hours=1)).isoformat()),
        "prizes": terms(prizes=[]),
        "maxEntriesPerMember": terms(maxEntriesPerMember=0),
        "minSpend": terms(minSpend={"amountMinor": 50_000, "currency": "EUR"}),
        "entriesPerPurchase": terms(entriesPerPurchase=None, pointsPerEntry=None,
                                    minSpend=None),
        "pointsPerEntry": terms(pointsPerEntry=0),
        "name": terms(name=" "),
    }
    for field, values in cases.items():
        found = (await grocery.gql(CREATE, {"input": values}))["createDraw"]
        assert (found["__typename"], found["code"], found["field"]) == (
            "InvalidInputError", "INVALID_INPUT", field), found
    listed = await grocery.gql("{ draws { ... on DrawList { draws { id } } } }")
    assert listed["draws"]["draws"] == []


async def test_a_draw_end_to_end_recomputed_from_its_published_proof(tmp_path: Path) -> None:
    gw, clock, grocery = await world(tmp_path)
    made = (await grocery.gql(CREATE, {"input": terms()}))["createDraw"]["draw"]
    draw_id = made["id"]
    assert (made["status"], made["seed"], made["owner"]) == ("OPEN", None, "grocery")
    async with grocery.http() as client:  # public, no token: the commitment before any entry
        early = (await client.get(made["proofUrl"])).json()
    assert early["commitment"] == made["commitment"] and "seed" not in early

    members = {}
    for n, minor in enumerate((120_000, 90_000, 60_000, 30_000, 200_000), start=1):
        await grocery.gql(ENROL, {"c": f"g-{n}"})
        await grocery.gql(EARN, {"c": f"g-{n}", "minor": minor, "p": f"p-{n}"})
        members[n] = member_api(gw, member_id_of(gw, "grocery", f"g-{n}"))
    drain(gw)
    drain(gw)  # redelivered: no extra entries

    ann = members[1]  # 120 points, 2 entries from her 1,200.00 UAH purchase
    bought = (await ann.gql(ENTER, {"d": draw_id, "n": 3, "k": "ann-1"}))["enterDraw"]
    assert bought == {"__typename": "EnterDrawSuccess", "entries": 3, "totalEntries": 5,
                      "pointsSpent": 30, "available": 90}
    assert (await ann.gql(ENTER, {"d": draw_id, "n": 3, "k": "ann-1"}))["enterDraw"] == bought
    before = ledger_snapshot(gw)
    over = (await ann.gql(ENTER, {"d": draw_id, "n": 1, "k": "ann-2"}))["enterDraw"]
    assert over == {"__typename": "DrawEntryLimitError", "code": "DRAW_ENTRY_LIMIT",
                    "field": "entries", "limit": 5, "held": 5, "requested": 1,
                    "message": over["message"]}
    dan = members[4]  # 30 points, no entries (300.00 UAH is below the minimum)
    poor = (await dan.gql(ENTER, {"d": draw_id, "n": 4, "k": "dan-1"}))["enterDraw"]
    assert (poor["code"], poor["requested"], poor["available"]) == (
        "INSUFFICIENT_POINTS", 40, 30)
    assert ledger_snapshot(gw) == before
    await dan.gql(ENTER, {"d": draw_id, "n": 3, "k": "dan-2"})  # 30 points: 3 entries

    seen = (await ann.gql(VIEWER))["viewer"]
    assert seen["wallet"]["available"] == 90
    [mine] = seen["draws"]
    assert (mine["id"], mine["status"], mine["myEntries"], mine["won"]) == (
        draw_id, "OPEN", 5, [])

    early_close = (await grocery.gql(CLOSE, {"d": draw_id}))["closeDraw"]
    assert early_close["code"] == "DRAW_STILL_OPEN"
    clock.advance(timedelta(days=7))  # tokens expire: fresh ones at the new time
    await grocery.fetch_token()
    members = {n: member_api(gw, member_id_of(gw, "grocery", f"g-{n}")) for n in members}
    dan = members[4]
    refused = (await dan.gql(ENTER, {"d": draw_id, "n": 1, "k": "dan-3"}))["enterDraw"]
    assert refused["code"] == "DRAW_CLOSED"
    closed = (await grocery.gql(CLOSE, {"d": draw_id}))["closeDraw"]["draw"]
    # ann 5, bea 2 (900.00), cy 2 (600.00), dan 3 (bought), eve 2 (2,000.00): 14 entries
    assert (closed["status"], closed["entries"], closed["entrants"]) == ("CLOSED", 14, 5)

    async with grocery.http() as client:
        proof = (await client.get(f"/draws/{draw_id}/proof")).json()
    assert hashlib.sha256(bytes.fromhex(proof["seed"])).hexdigest() == made["commitment"]
    assert sorted(e["entries"] for e in proof["entries"]) == [2, 2, 2, 3, 5]
    winners = recompute(proof)
    assert winners == [(w["prize"], w["entrant"]) for w in proof["winners"]]
    assert [p for p, _ in winners] == ["Bike", "Voucher", "Voucher"]
    assert len({e for _, e in winners}) == 3  # one prize per member
    assert winners == [(w["prize"], w["entrant"]) for w in closed["winners"]]
    assert guide_verifier()(proof) == winners  # the verifier printed in docs/draws.md agrees

    # Each member finds themself in the list by their own entrant id, and sees what they won.
    won_by = {e: p for p, e in winners}
    for api in members.values():
        [view] = (await api.gql(VIEWER))["viewer"]["draws"]
        listed = {e["entrant"]: e["entries"] for e in proof["entries"]}
        assert listed[view["myEntrantId"]] == view["myEntries"]
        assert view["won"] == ([won_by[view["myEntrantId"]]] if view["myEntrantId"] in won_by
                               else [])
    text = json.dumps(proof)  # no member id appears in the proof
    for n in members:
        assert member_id_of(gw, "grocery", f"g-{n}") not in text

    def verify(*argv: str) -> tuple[int, str]:
        root = argparse.ArgumentParser(prog="gateway")
        out = io.StringIO()
        cli.register(root.add_subparsers(dest="command"), lambda: gw.services, out=out)
        args = root.parse_args(["draws", "verify", *argv])
        return args.func(args), out.getvalue()

    assert verify(draw_id)[0] == 0
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof))
    code, said = verify("--file", str(good))
    assert code == 0 and said.startswith("verified")
    seed = bytearray(bytes.fromhex(proof["seed"]))
    seed[0] ^= 1
    bad_seed = tmp_path / "bad-seed.json"
    bad_seed.write_text(json.dumps({**proof, "seed": seed.hex()}))
    code, said = verify("--file", str(bad_seed))
    assert code == 1 and "SHA-256 of the seed does not match" in said
    entries = [dict(e) for e in proof["entries"]]
    entries[0]["entries"] += 1  # one more ticket for somebody
    bad_list = tmp_path / "bad-list.json"
    bad_list.write_text(json.dumps({**proof, "entries": entries}))
    code, said = verify("--file", str(bad_list))
    assert code == 1 and "entry list does not match" in said


async def test_a_partner_sees_only_its_own_draws(tmp_path: Path) -> None:
    gw, _, grocery = await world(tmp_path)
    electronics = await partner_api(gw, "electronics")
    theirs = (await electronics.gql(CREATE, {"input": terms(minSpend=None)}))["createDraw"]
    assert theirs["__typename"] == "CreateDrawSuccess"
    draw_id = theirs["draw"]["id"]
    found = (await grocery.gql("query($id: ID!) { draw(id: $id) { __typename } }",
                               {"id": draw_id}))["draw"]
    assert found == {"__typename": "NotFoundError"}
    assert (await grocery.gql(CLOSE, {"d": draw_id}))["closeDraw"]["code"] == "NOT_FOUND"
    mine = await grocery.gql("{ draws { ... on DrawList { draws { id } } } }")
    assert mine["draws"]["draws"] == []
    async with grocery.http() as client:
        assert (await client.get("/draws/drw_nothing/proof")).status_code == 404


async def test_the_public_proof_is_rate_limited_per_address(tmp_path: Path) -> None:
    from gateway.settings import Limits
    from tests.support.draws import grocery_draw

    gw = make_gateway(tmp_path, limits=Limits(rate_limit_per_minute=60, rate_limit_burst=2))
    draw = grocery_draw(gw)
    api = Api(gw, None, "", "")
    async with api.http() as client:
        answers = [(await client.get(f"/draws/{draw.id}/proof")).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
