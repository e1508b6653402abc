"""The HTML report opened in headless Chromium: both plotly charts must render (their SVG
elements exist in the DOM after scripts ran). Skipped loudly when Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.settlement.html import report_html
from gateway.settlement.service import settlement_report
from tests.settlement.scenario import JAN, run_worked_example

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="SKIPPED LOUDLY: Debian's `chromium` package is "
                    "not installed (apt-get install -y chromium); the chart test cannot run")
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path / "db")
    report = settlement_report(gw.services.engine, gw.services.rules, JAN, "EUR")
    page = tmp_path / "report.html"
    page.write_text(report_html(report), encoding="utf-8")
    assert CHROMIUM is not None
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    for chart in ("net-positions", "origin-matrix"):
        start = dom.index(f'id="{chart}"')
        assert "main-svg" in dom[start:start + 20_000], f"{chart} did not render"
    assert 'class="trace bars"' in dom
    assert dom.count('class="point"') == len(report.partners) + 1  # partners and coalition
    heat = dom.index('class="heatmaplayer mlayer"')
    assert '<g class="hm"' in dom[heat:] and "<image" in dom[heat:]  # the painted heat map
    # The table as the browser shows it balances on its face, by display name, with the
    # returns/refunds columns (issue 9, item 6).
    table = dom[dom.index('id="settlement-lines"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]
    assert cells[0] == ["partner", "issued", "payable", "returned", "credited", "redeemed",
                        "receivable", "refunded", "charged back", "donations", "fee",
                        "adjustments", "net (EUR)"]
    assert [(c[0], c[-1]) for c in cells[1:]] == [
        ("Dobro Fund", "0.11"), ("Volt Electronics", "-2.69"), ("Shlyakh Fuel", "0.00"),
        ("Kolos Grocery", "-0.30"), ("Coalition", "2.88"), ("Total", "0.00")]
    assert sum(Decimal(c[-1]) for c in cells[1:-1]) == 0
    assert "<title>Settlement 2026-01-01 00:00 to 2026-02-01 00:00 UTC</title>" in dom
