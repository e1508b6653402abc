"""``gateway db upgrade`` brings this run's database to the newest revision and ``gateway db
current`` reports it, exiting 1 while the database is behind the code (a deploy pipeline's
check), 0 at the head."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.db import migrate
from gateway.db.engine import make_engine
from tests.support import harness


def test_upgrade_then_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    url = harness.database_url(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    engine = harness.track(make_engine(url))
    behind = migrate.current(engine) != migrate.head()
    assert main(["db", "current"]) == (1 if behind else 0)
    capsys.readouterr()

    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == (f"database at revision {migrate.head()} "
                                       f"(head {migrate.head()})\n")
    assert migrate.current(engine) == migrate.head()
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"{migrate.head()} (head {migrate.head()})\n"
