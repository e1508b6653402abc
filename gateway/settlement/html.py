"""The report a person reads: one self-contained HTML page with two plotly charts.

A bar chart of each partner's net position and a heat map of the origin → redeemer matrix,
drawn by plotly with plotly.js embedded in the page, so the file opens offline and the page
served by the gateway needs no CDN. Figures come from the report's integer minor units; the
charts show major units (a display conversion only)."""

from __future__ import annotations

import html
from fractions import Fraction

import plotly.graph_objects as go

from gateway.settlement.model import Report
from gateway.settlement.render import major


def report_html(report: Report, partner_id: str | None = None) -> str:
    lines = [p for p in report.partners if partner_id in (None, p.partner_id)]
    cells = [m for m in report.matrix if partner_id in (None, m.origin, m.redeemer)]
    cur = report.currency
    bars = go.Figure(go.Bar(
        x=[p.partner_id for p in lines], y=[_float(p.net_minor) for p in lines],
        marker_color=["#2a9d8f" if p.net_minor >= 0 else "#e76f51" for p in lines],
        text=[major(p.net_minor) for p in lines]))
    bars.update_layout(title=f"Net position per partner ({cur}; > 0: coalition pays)",
                       height=420)
    names = sorted({m.origin for m in cells} | {m.redeemer for m in cells}) or ["-"]
    points = {(m.origin, m.redeemer): m for m in cells}
    heat = go.Figure(go.Heatmap(
        x=names, y=names, colorscale="Blues",
        z=[[points[(o, r)].points if (o, r) in points else 0 for r in names] for o in names],
        text=[[f"{points[(o, r)].points} points, {major(points[(o, r)].minor)} {cur}"
               if (o, r) in points else "" for r in names] for o in names],
        hoverinfo="text"))
    heat.update_layout(title="Points earned at (rows) and redeemed at (columns)",
                       xaxis_title="redeemer", yaxis_title="origin", height=480)
    chart_bars = bars.to_html(full_html=False, include_plotlyjs=True, div_id="net-positions")
    chart_heat = heat.to_html(full_html=False, include_plotlyjs=False, div_id="origin-matrix")
    rows = "".join(
        f"<tr><td>{html.escape(p.partner_id)}</td><td>{p.figures.issued_points}</td>"
        f"<td>{major(p.figures.issued_minor)}</td><td>{p.figures.redeemed_points}</td>"
        f"<td>{major(p.figures.redeemed_minor)}</td><td>{major(p.figures.fee_minor)}</td>"
        f"<td>{major(p.adjustments_minor)}</td><td>{major(p.net_minor)}</td></tr>"
        for p in lines)
    title = (f"Settlement {report.period.start:%Y-%m-%d %H:%M} to "
             f"{report.period.end:%Y-%m-%d %H:%M} UTC")
    digest = "" if partner_id else f"<p>SHA-256 <code>{report.sha256}</code></p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>{digest}
<table><tr><th>partner</th><th>issued</th><th>payable</th><th>redeemed</th><th>receivable</th>
<th>fee</th><th>adjustments</th><th>net ({cur})</th></tr>{rows}</table>
{chart_bars}
{chart_heat}
</body></html>
"""


def _float(minor: int) -> float:
    # Display only: plotly plots floats. Every figure shown as text comes from `major`.
    return float(Fraction(minor, 100))
