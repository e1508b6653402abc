"""The report a person reads: one self-contained HTML page with two plotly charts.

A table of every partner's figures (issued, returned, redeemed, refunded, fees, adjustments) by
display name, then the coalition's line and a total, so the nets visibly sum to zero; a bar
chart of the net positions (the coalition's included) and a heat map of the origin → redeemer
matrix, drawn by plotly. The file the CLI writes embeds plotly.js, so it opens offline; the page
the gateway serves links it as a static file (``plotly_src``: about 4.7 MB once, cached by the
browser, instead of in every response), still from the gateway itself, no CDN. Figures come
from the report's integer minor units; the charts show major units (a display conversion
only). A partner-bound view shows its own line and no coalition line (it is a statement, not
the coalition's books)."""

from __future__ import annotations

import html
from fractions import Fraction

import plotly.graph_objects as go

from gateway.settlement.model import Report
from gateway.settlement.render import major, names, period_title, promotion_rows

COALITION = "Coalition"


def report_html(report: Report, partner_id: str | None = None, *,
                plotly_src: str | None = None) -> str:
    lines = [p for p in report.partners if partner_id in (None, p.partner_id)]
    cells = [m for m in report.matrix if partner_id in (None, m.origin, m.redeemer)]
    cur = report.currency
    name = names(report)
    bar_names = [p.name for p in lines]
    bar_nets = [p.net_minor for p in lines]
    if partner_id is None:
        bar_names.append(COALITION)
        bar_nets.append(report.coalition.net_minor)
    bars = go.Figure(go.Bar(
        x=bar_names, y=[_float(n) for n in bar_nets],
        marker_color=["#2a9d8f" if n >= 0 else "#e76f51" for n in bar_nets],
        text=[major(n) for n in bar_nets]))
    bars.update_layout(title=f"Net position per partner ({cur}; > 0: coalition pays)",
                       height=420)
    ids = sorted({m.origin for m in cells} | {m.redeemer for m in cells})
    labels = [name(i) for i in ids] or ["-"]
    points = {(m.origin, m.redeemer): m for m in cells}
    heat = go.Figure(go.Heatmap(
        x=labels, y=labels, colorscale="Blues",
        z=[[points[(o, r)].points if (o, r) in points else 0 for r in ids] for o in ids] or [[0]],
        text=[[f"{points[(o, r)].points} points, {major(points[(o, r)].minor)} {cur}"
               if (o, r) in points else "" for r in ids] for o in ids] or [[""]],
        hoverinfo="text"))
    heat.update_layout(title="Points earned at (rows) and redeemed at (columns)",
                       xaxis_title="redeemer", yaxis_title="origin", height=480)
    chart_bars = bars.to_html(full_html=False, include_plotlyjs=plotly_src or True,
                              div_id="net-positions")
    chart_heat = heat.to_html(full_html=False, include_plotlyjs=False, div_id="origin-matrix")
    rows = "".join(
        f"<tr class=\"partner\"><td>{html.escape(p.name)}</td>"
        + "".join(f"<td>{v}</td>" for v in (
            p.figures.issued_points, major(p.figures.issued_minor),
            p.figures.issue_returns_points, major(p.figures.issue_returns_minor),
            p.figures.redeemed_points, major(p.figures.redeemed_minor),
            p.figures.redeem_refunds_points, major(p.figures.redeem_refunds_minor),
            major(p.figures.donations_minor), major(p.figures.fee_minor),
            major(p.adjustments_minor)))
        + f"<td class=\"net\">{major(p.net_minor)}</td></tr>"
        for p in lines)
    if partner_id is None:
        c = report.coalition
        blank = "<td></td>" * 11
        total = sum(p.net_minor for p in lines) + c.net_minor
        rows += (f"<tr class=\"coalition\"><td>{COALITION}</td>{blank}"
                 f"<td class=\"net\">{major(c.net_minor)}</td></tr>"
                 f"<tr class=\"total\"><th>Total</th>{blank}"
                 f"<td class=\"net\">{major(total)}</td></tr>")
    promotions = promotion_rows(report, partner_id)
    promo_table = "" if not promotions else (
        "<h2>Promotions by funder</h2><table id=\"promotion-lines\"><tr><th>funder</th>"
        "<th>bonus points</th><th>reversed</th><th>net points</th>"
        f"<th>cost ({cur})</th><th>paid by</th></tr>"
        + "".join("<tr class=\"funder\">" + "".join(f"<td>{html.escape(v)}</td>" for v in row)
                  + "</tr>" for row in promotions)
        + "</table><p>A partner funder's cost is in its net above; the coalition's own "
        "campaigns are its own cost.</p>")
    title = f"Settlement {period_title(report.period)}"
    digest = "" if partner_id else f"<p>SHA-256 <code>{report.sha256}</code></p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>{digest}
<table id="settlement-lines"><tr><th>partner</th><th>issued</th><th>payable</th>
<th>returned</th><th>credited</th><th>redeemed</th><th>receivable</th><th>refunded</th>
<th>charged back</th><th>donations</th><th>fee</th><th>adjustments</th>
<th>net ({cur})</th></tr>{rows}</table>
<p>Net &gt; 0: the coalition pays the partner. The coalition's line is what it keeps;
together they sum to zero.</p>
{promo_table}
{chart_bars}
{chart_heat}
</body></html>
"""


def _float(minor: int) -> float:
    # Display only: plotly plots floats. Every figure shown as text comes from `major`.
    return float(Fraction(minor, 100))
