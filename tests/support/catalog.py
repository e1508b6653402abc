"""Catalog copies for tests that need a partner's rules changed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from gateway.settings import DEFAULT_CATALOG


def catalog_with_pending_days(tmp_path: Path, days: int = 14) -> Path:
    """A copy of the default catalog where electronics holds earned points ``days`` days."""
    catalog = tmp_path / "catalog"
    shutil.copytree(DEFAULT_CATALOG, catalog)
    toml = catalog / "electronics.toml"
    text, count = re.subn(r"pending_days = \d+", f"pending_days = {days}", toml.read_text())
    assert count >= 1, "electronics.toml should state pending_days"
    toml.write_text(text)
    return catalog
