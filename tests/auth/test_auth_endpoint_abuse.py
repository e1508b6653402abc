"""Abuse of the endpoints that hash secrets (issue 9 item 2): limits before hashing with
back-off, the same cost on every refusal path (counted in scrypt calls, not timed), one
client-authentication method per request, and refusals audited as counts per minute."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette

from gateway.auth import clients as client_module
from gateway.auth.audit import Refusal, RefusalLog
from gateway.auth.clients import CreatedClient
from gateway.auth.endpoints import auth_routes
from gateway.auth.service import AuthService
from gateway.core.clock import FixedClock
from gateway.limits import InProcessRateLimiter, RateLimiter
from gateway.settings import Settings

ISSUER = "https://auth.coalition.test"
GRANT = {"grant_type": "client_credentials"}


class Ticks:
    """The limiters' monotonic clock, moved by hand so budgets refill only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def make(self, name: str, per_minute: int, burst: int) -> RateLimiter:
        return InProcessRateLimiter(per_minute, burst=burst, now=lambda: self.now)


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def auth(engine: Engine, settings: Settings, clock: FixedClock, ticks: Ticks) -> AuthService:
    return AuthService(engine, settings, clock, make_limiter=ticks.make)


@pytest.fixture
async def http(auth: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=Starlette(routes=auth_routes(auth)))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every scrypt the client module runs, appended here (its n parameter)."""
    calls: list[int] = []
    real: Callable[..., bytes] = client_module._scrypt

    def counted(secret: str, salt: bytes, n: int, r: int, p: int, size: int = 32) -> bytes:
        calls.append(n)
        return real(secret, salt, n, r, p, size)

    monkeypatch.setattr(client_module, "_scrypt", counted)
    return calls


def _refusals(rows: list[dict[str, Any]]) -> list[tuple[str, str | None, str, int]]:
    return [(r["action"], r["subject"], r["detail"]["reason"], r["detail"]["count"])
            for r in rows if r["action"].endswith("client_refused")]


async def test_wrong_secrets_back_off_to_429_before_any_hash(
    http: httpx.AsyncClient, auth: AuthService, shop_client: CreatedClient, ticks: Ticks,
    scrypt_calls: list[int], engine: Engine, audit_rows: Any,
) -> None:
    client_id = shop_client.client.client_id
    statuses = []
    for _ in range(7):
        response = await http.post("/oauth/token", data=GRANT, auth=(client_id, "wrong"))
        statuses.append(response.status_code)
    # 20 units at once; a refusal costs 1 + 4: four wrong secrets empty the client's budget.
    assert statuses == [401, 401, 401, 401, 429, 429, 429]
    assert len(scrypt_calls) == 4  # the 429s hashed nothing
    assert response.json() == {
        "error": "too_many_requests",
        "error_description": "too many requests for this client or source address; "
                             "retry after 2 s",
    }
    assert response.headers["retry-after"] == "2"
    assert response.headers["cache-control"] == "no-store"
    # The right secret waits too (the client id's budget is spent): the back-off holds ...
    right = await http.post("/oauth/token", data=GRANT, auth=(client_id, shop_client.secret))
    assert right.status_code == 429
    assert len(scrypt_calls) == 4
    # ... for as long as Retry-After said, not longer.
    ticks.now += 2
    right = await http.post("/oauth/token", data=GRANT, auth=(client_id, shop_client.secret))
    assert right.status_code == 200
    assert len(scrypt_calls) == 5
    auth.flush_audit()
    assert _refusals(audit_rows(engine)) == [
        ("token.client_refused", client_id, "bad_secret", 4),
        ("token.client_refused", client_id, "rate_limited", 4),
    ]


async def test_many_client_ids_from_one_address_hit_the_address_budget(
    http: httpx.AsyncClient, auth: AuthService, scrypt_calls: list[int], engine: Engine,
    audit_rows: Any,
) -> None:
    statuses = []
    for n in range(22):
        response = await http.post("/oauth/token", data=GRANT, auth=(f"cli_guess{n}", "x"))
        statuses.append(response.status_code)
    # The address has 100 units; each refused guess costs 5: twenty guesses, then 429.
    assert statuses == [401] * 20 + [429, 429]
    assert len(scrypt_calls) == 20
    before = len(audit_rows(engine))
    auth.flush_audit()
    rows = audit_rows(engine)[before:]
    assert len(rows) == 22  # one row per (client id, reason) in this minute, with its count
    assert {row["detail"]["count"] for row in rows} == {1}
    assert rows[0]["detail"]["address"] == "127.0.0.1"


async def test_refusals_are_one_row_per_client_and_minute_written_when_the_minute_ends(
    http: httpx.AsyncClient, auth: AuthService, shop_client: CreatedClient, ticks: Ticks,
    clock: FixedClock, engine: Engine, audit_rows: Any,
) -> None:
    client_id = shop_client.client.client_id
    for _ in range(3):
        await http.post("/oauth/token", data=GRANT, auth=(client_id, "wrong"))
    assert _refusals(audit_rows(engine)) == []  # counted in memory while the minute runs
    clock.advance(timedelta(seconds=60))
    ticks.now += 60
    await http.post("/oauth/token", data=GRANT, auth=(client_id, "wrong"))
    rows = [r for r in audit_rows(engine) if r["action"] == "token.client_refused"]
    assert [(r["subject"], r["detail"]) for r in rows] == [(client_id, {
        "reason": "bad_secret", "method": "client_secret_basic", "count": 3,
        "address": "127.0.0.1", "window_start": "2030-01-15T09:00:00+00:00",
        "window_end": "2030-01-15T09:01:00+00:00"})]
    auth.flush_audit()
    assert _refusals(audit_rows(engine))[-1] == ("token.client_refused", client_id,
                                                 "bad_secret", 1)


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
async def test_every_refusal_path_costs_one_scrypt(
    endpoint: str, http: httpx.AsyncClient, auth: AuthService, shop_client: CreatedClient,
    fuel_client: CreatedClient, scrypt_calls: list[int],
) -> None:
    auth.clients.disable(fuel_client.client.client_id, actor="admin:t")
    app = auth.clients.create(name="App", kind="app", actor="admin:t",
                              redirect_uris=["https://app.test/cb"])
    data = {"token": "x"} if endpoint != "/oauth/token" else GRANT
    attempts = {
        "unknown id": ("cli_nobody", "secret"),
        "known id, wrong secret": (shop_client.client.client_id, "secret"),
        "disabled client, right secret": (fuel_client.client.client_id, fuel_client.secret),
        "public client with a secret": (app.client.client_id, "secret"),
    }
    answers = {}
    for path, (client_id, secret) in attempts.items():
        for how in ("basic", "post"):
            scrypt_calls.clear()
            if how == "basic":
                response = await http.post(endpoint, data=data, auth=(client_id, secret))
            else:
                response = await http.post(endpoint, data={
                    **data, "client_id": client_id, "client_secret": secret})
            answers[path, how] = (response.status_code, response.json(), len(scrypt_calls))
    expected = (401, {"error": "invalid_client",
                      "error_description": "client authentication failed"}, 1)
    assert answers == {key: expected for key in answers}
    assert set(scrypt_calls) == {2**14}  # the decoy hash has today's cost parameters


async def test_no_secret_costs_no_scrypt_on_any_path(
    http: httpx.AsyncClient, shop_client: CreatedClient, scrypt_calls: list[int],
) -> None:
    for client_id in ("cli_nobody", shop_client.client.client_id):
        response = await http.post("/oauth/token", data={**GRANT, "client_id": client_id})
        assert response.status_code == 401
    assert scrypt_calls == []


async def test_basic_and_a_body_secret_together_are_invalid_request(
    http: httpx.AsyncClient, shop_client: CreatedClient, fuel_client: CreatedClient,
    scrypt_calls: list[int],
) -> None:
    # Basic with a wrong secret, the body with another client's right one: no token for either.
    response = await http.post("/oauth/token", auth=(shop_client.client.client_id, "wrong"),
                               data={**GRANT, "client_id": fuel_client.client.client_id,
                                     "client_secret": fuel_client.secret})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "use one client authentication method: HTTP Basic or "
                             "client_secret in the body, not both",
    }
    assert scrypt_calls == []
    # Even with both right and the same client.
    response = await http.post("/oauth/token", auth=(fuel_client.client.client_id,
                                                     fuel_client.secret),
                               data={**GRANT, "client_secret": fuel_client.secret})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert "access_token" not in response.json()


async def test_a_spray_of_made_up_ids_is_counted_in_bounded_memory(
    engine: Engine, clock: FixedClock, audit_rows: Any,
) -> None:
    log = RefusalLog(engine, clock, max_pending=2)
    for n in range(5):
        log.refused(Refusal("token", f"cli_made_up_{n}", "10.0.0.9", "rate_limited", "none"),
                    write=False)
    assert log.flush() == 3
    rows = [(r["subject"], r["detail"]["count"]) for r in audit_rows(engine)
            if r["action"] == "token.client_refused"]
    assert rows == [("cli_made_up_0", 1), ("cli_made_up_1", 1), ("*", 3)]
