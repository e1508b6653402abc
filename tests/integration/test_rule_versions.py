"""Publishing a rule version (CLI): recorded with who and when; operations made before keep the
version they were made under, and operations after it starts use the new one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from gateway.app import build
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger import service
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.settings import Settings
from tests.support.harness import NOW

ROOT = Path(__file__).resolve().parents[2]
V3 = """
version = 3
effective_from = "2027-06-01T00:00:00Z"

[earn]
points = 1
per_amount_minor = 500          # twice as generous: 1 point per 5.00 UAH
expiry_days = 365

[burn]
point_value_minor = "10"
max_basket_share = "0.5"
min_points = 50

[settlement]
currency = "EUR"
price_per_point_issued_minor = "0.25"
price_per_point_redeemed_minor = "0.22"
"""


def publish(
    db: Path, file: Path, actor: str = "alice@coalition"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "rules", "publish", "--partner", "grocery",
         "--file", str(file), "--actor", actor],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_publish_then_old_operations_keep_their_version(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    clock = FixedClock(NOW)
    gw = build(Settings(database_url=f"sqlite:///{db}"), clock=clock)
    enrol_customer(gw.services.engine, clock, "grocery", "g-1")
    before = service.earn_points(gw.services.ledger, EarnPoints(
        "grocery", "g-1", Money(120000, "UAH"), "store", "p-1", "k-1"))
    assert (before.points, before.rule_version) == (120, 1)

    spec = tmp_path / "v3.toml"
    spec.write_text(V3)
    done = publish(db, spec)
    assert done.returncode == 0, done.stderr
    assert "published grocery v3" in done.stdout

    later = FixedClock(datetime(2027, 6, 2, 12, tzinfo=UTC))
    gw2 = build(Settings(database_url=f"sqlite:///{db}"), clock=later)
    after = service.earn_points(gw2.services.ledger, EarnPoints(
        "grocery", "g-1", Money(120000, "UAH"), "store", "p-2", "k-2"))
    assert (after.points, after.rule_version) == (240, 3)
    with gw2.services.engine.connect() as conn:
        versions = dict(conn.execute(select(t.operations.c.purchase_id,
                                            t.operations.c.rule_version)).all())
        published = conn.execute(select(t.rule_versions.c.published_by)
                                 .where(t.rule_versions.c.version == 3)).scalar_one()
        log = t.audit_log.c
        audit = conn.execute(select(log.actor, log.subject, log.detail)
                             .where(t.audit_log.c.action == "rule_version.published")).one()
    assert versions == {"p-1": 1, "p-2": 3}
    assert published == "alice@coalition"
    assert audit[:2] == ("alice@coalition", "grocery/v3")
    assert json.loads(audit[2]) == {"effective_from": "2027-06-01T00:00:00+00:00"}


def test_publish_refuses_past_start_and_bad_fields(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    build(Settings(database_url=f"sqlite:///{db}"), clock=FixedClock(NOW))
    past = tmp_path / "past.toml"
    past.write_text(V3.replace("2027-06-01", "2026-02-01"))
    done = publish(db, past)
    assert done.returncode == 2
    assert "in the past" in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(V3.replace("per_amount_minor = 500", "per_amount_minor = 0"))
    done = publish(db, bad)
    assert done.returncode == 2
    assert "earn.per_amount_minor" in done.stderr
    with build(Settings(database_url=f"sqlite:///{db}"),
               clock=FixedClock(NOW)).services.engine.connect() as conn:
        stored = conn.execute(select(t.rule_versions.c.version)
                              .where(t.rule_versions.c.partner_id == "grocery")).scalars().all()
    assert stored == [1, 2]
