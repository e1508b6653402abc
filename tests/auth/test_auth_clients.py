"""OAuth clients: secrets hashed and shown once, kinds and allowances, admin actions audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from gateway.auth.clients import ensure_demo_client, hash_secret, verify_secret
from gateway.auth.scopes import DEFAULT_ALLOWANCE, SCOPES, describe, format_scope
from gateway.auth.service import AuthService
from gateway.core.clock import FixedClock
from gateway.core.errors import InvalidInput, NotFound
from gateway.db.tables import audit_log, oauth_clients


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_hash_encodes_its_parameters_and_verifies() -> None:
    encoded = hash_secret("s3cret")
    scheme, params, salt, digest = encoded.split("$")
    assert (scheme, params) == ("scrypt", "n=16384,r=8,p=1")
    assert len(salt) == 22 and len(digest) == 43  # 16 and 32 bytes, base64url
    assert verify_secret("s3cret", encoded) is True
    assert verify_secret("s3creT", encoded) is False
    assert hash_secret("s3cret") != encoded  # a fresh salt every time
    assert verify_secret("s3cret", "garbage") is False
    assert verify_secret("s3cret", "bcrypt$n=1,r=1,p=1$AA$AA") is False


def test_create_stores_only_a_hash_and_audits_without_the_secret(
    auth: AuthService, engine: Engine, clock: FixedClock, audit_rows: Any, dump_database: Any
) -> None:
    created = auth.clients.create(
        name="Shop POS", kind="partner", partner_id="shop", actor="admin:alice"
    )
    client = created.client
    assert (client.name, client.kind, client.partner_id) == ("Shop POS", "partner", "shop")
    assert client.allowed_scopes == DEFAULT_ALLOWANCE["partner"]
    assert client.created_at == clock.now()
    assert client.client_id.startswith("cli_")
    assert len(created.secret) >= 40
    assert created.secret not in repr(created)

    with engine.connect() as conn:
        stored = conn.execute(select(oauth_clients)).one()
    assert stored.secret_hash.startswith("scrypt$")
    assert verify_secret(created.secret, stored.secret_hash)
    assert created.secret not in dump_database(engine)

    rows = audit_rows(engine)
    assert [(r["actor"], r["action"], r["subject"], r["detail"], r["at"]) for r in rows] == [
        (
            "admin:alice",
            "client.create",
            client.client_id,
            {
                "name": "Shop POS",
                "kind": "partner",
                "partner_id": "shop",
                "scopes": sorted(DEFAULT_ALLOWANCE["partner"]),
            },
            clock.now(),
        )
    ]


def test_finance_client_may_be_coalition_wide_or_bound(auth: AuthService) -> None:
    wide = auth.clients.create(name="Finance", kind="finance", actor="admin:t").client
    bound = auth.clients.create(
        name="Shop finance", kind="finance", partner_id="shop", actor="admin:t",
        scopes=["settlement:read"],
    ).client
    assert (wide.partner_id, wide.allowed_scopes) == (
        None, frozenset({"settlement:read", "settlement:close", "reports:read"})
    )
    assert (bound.partner_id, bound.allowed_scopes) == ("shop", frozenset({"settlement:read"}))


@pytest.mark.parametrize(
    ("kwargs", "message", "field"),
    [
        ({"kind": "partner"}, "a partner client must be bound to a partner", "partner_id"),
        (
            {"kind": "admin", "partner_id": "shop"},
            "an admin client is coalition-wide; omit partner_id",
            "partner_id",
        ),
        ({"kind": "robot"}, "kind must be one of partner, finance, admin, app; got 'robot'",
         "kind"),
        (
            {"kind": "partner", "partner_id": "shop", "scopes": ["points:earn", "admin"]},
            "a partner client may not hold admin",
            "scopes",
        ),
        (
            {"kind": "finance", "scopes": []},
            "a client needs at least one scope",
            "scopes",
        ),
        (
            {"kind": "partner", "partner_id": "nowhere"},
            "no partner with id 'nowhere'",
            "partner_id",
        ),
    ],
)
def test_invalid_clients_are_refused_and_nothing_is_written(
    auth: AuthService, engine: Engine, kwargs: dict[str, Any], message: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        auth.clients.create(name="x", actor="admin:t", **kwargs)
    assert (caught.value.message, caught.value.field) == (message, field)
    assert _count(engine, oauth_clients) == 0
    assert _count(engine, audit_log) == 0


def test_list_disable_and_rotate(
    auth: AuthService, engine: Engine, clock: FixedClock, audit_rows: Any, dump_database: Any
) -> None:
    a = auth.clients.create(name="A", kind="partner", partner_id="shop", actor="admin:t")
    b = auth.clients.create(name="B", kind="admin", actor="admin:t")
    assert [c.client_id for c in auth.clients.list()] == sorted(
        [a.client.client_id, b.client.client_id]
    )

    disabled = auth.clients.disable(a.client.client_id, actor="admin:bob")
    assert disabled.disabled_at == clock.now()
    assert disabled.disabled is True

    rotated = auth.clients.rotate_secret(b.client.client_id, actor="admin:bob")
    assert rotated.secret != b.secret
    fresh = auth.clients.get(b.client.client_id)
    assert fresh is not None
    assert fresh.check_secret(rotated.secret) is True
    assert fresh.check_secret(b.secret) is False
    assert fresh.rotated_at == clock.now()

    rows = audit_rows(engine)
    assert [(r["actor"], r["action"], r["subject"]) for r in rows[-2:]] == [
        ("admin:bob", "client.disable", a.client.client_id),
        ("admin:bob", "client.rotate_secret", b.client.client_id),
    ]
    database = dump_database(engine)
    for secret in (a.secret, b.secret, rotated.secret):
        assert secret not in database


def test_unknown_client_cannot_be_disabled_or_rotated(auth: AuthService, engine: Engine) -> None:
    with pytest.raises(NotFound):
        auth.clients.disable("cli_nobody", actor="admin:t")
    with pytest.raises(NotFound):
        auth.clients.rotate_secret("cli_nobody", actor="admin:t")
    assert _count(engine, audit_log) == 0


def test_ensure_demo_client_is_idempotent(
    engine: Engine, clock: FixedClock, audit_rows: Any, dump_database: Any
) -> None:
    scopes = ["points:earn", "members:read"]
    first = ensure_demo_client(engine, "shop", "demo-shop", "demo-secret", scopes, clock=clock)
    second = ensure_demo_client(engine, "shop", "demo-shop", "demo-secret", scopes, clock=clock)
    assert first == second
    assert first.allowed_scopes == frozenset(scopes)
    assert first.check_secret("demo-secret") is True
    assert _count(engine, oauth_clients) == 1
    assert [r["action"] for r in audit_rows(engine)] == ["client.ensure_demo"]
    assert "demo-secret" not in dump_database(engine)

    changed = ensure_demo_client(engine, "shop", "demo-shop", "new-secret", scopes, clock=clock)
    assert changed.check_secret("new-secret") is True
    assert _count(engine, oauth_clients) == 1


def test_scope_list_and_allowances() -> None:
    assert [s.name for s in SCOPES] == [
        "points:earn", "points:redeem", "points:reverse", "members:link", "members:read",
        "offers:manage", "webhooks:manage", "settlement:read", "settlement:close", "admin",
        "member", "reports:read",
    ]
    assert all(s.description for s in SCOPES)
    assert describe("reports:read") == SCOPES[-1].description
    assert DEFAULT_ALLOWANCE["admin"] == frozenset({"admin"})
    assert DEFAULT_ALLOWANCE["app"] == frozenset({"member"})
    assert format_scope({"admin", "points:earn", "members:read"}) == (
        "points:earn members:read admin"
    )
