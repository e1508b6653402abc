"""The reports as people and spreadsheets read them: terminal tables, CSV, an HTML page.

Points are integers; money is integer minor units in CSV and a decimal string of the major unit
in tables (``settlement.render.major``, no float); ratios are printed as decimals rounded once
(half-even) from their exact fractions. The HTML page (finance and marketing) draws its charts
with plotly, like the settlement page: the programme report's liability by partner, earn vs
burn by partner and the cohort retention heat map; a campaign's mean spend treated vs holdout
with the interval as error bars. ``plotly_src``: the gateway's static plotly.js path (None: the
script is embedded, so a file written by the CLI opens offline)."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import plotly.graph_objects as go

from gateway.reports.effectiveness import Effectiveness
from gateway.reports.programme import ProgrammeReport
from gateway.reports.stats import decimal
from gateway.settlement.render import major, period_title, table

PERCENT = Decimal("0.1")


def ratio(value: Fraction | None, places: Decimal = Decimal("0.0001")) -> str:
    return "" if value is None else str(decimal(value, places))


def percent(value: Fraction | None) -> str:
    return "" if value is None else f"{decimal(value * 100, PERCENT)} %"


def _opt(value: Decimal | None) -> str:
    return "" if value is None else str(value)


# --- programme ----------------------------------------------------------------------------------
def programme_summary(r: ProgrammeReport) -> list[tuple[str, str]]:
    return [("period", period_title(r.period)), ("active members", f"{r.active_members:,}"),
            ("cross-brand members", f"{r.cross_brand_members:,}"),
            ("points earned", f"{r.earned_points:,}"), ("points burned", f"{r.burned_points:,}"),
            ("earn/burn ratio", ratio(r.earn_burn_ratio)),
            ("points expired", f"{r.expired_points:,}"), ("breakage", percent(r.breakage)),
            ("outstanding points", f"{r.liability_points:,}"),
            ("held points", f"{r.held_points:,}"), ("member debt points", f"{r.debt_points:,}")]


def programme_table(r: ProgrammeReport) -> str:
    parts = [table(["figure", "value"], [list(x) for x in programme_summary(r)])]
    liability = {x.partner_id: x.points for x in r.liability}
    partners = sorted({f.partner_id for f in r.flows} | set(liability))
    flows = {f.partner_id: f for f in r.flows}
    parts.append(table(
        ["partner", "earned", "burned", "returned", "expired", "outstanding (origin)"],
        [[p, *(f"{getattr(flows[p], k):,}" if p in flows else "0" for k in (
            "earned_points", "burned_points", "returned_points", "expired_points")),
          f"{liability.get(p, 0):,}"] for p in partners]))
    width = max((len(c.active) for c in r.cohorts), default=0)
    parts.append(table(
        ["cohort", "members", *(f"+{k}" for k in range(width))],
        [[c.month, f"{c.members:,}", *(percent(c.share(k)) for k in range(len(c.active))),
          *([""] * (width - len(c.active)))] for c in r.cohorts]))
    return "\n\n".join(parts)


def programme_csv(r: ProgrammeReport) -> str:
    """One file, a ``section`` column: summary, partner and cohort rows (exact integers)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "key", "earned_points", "burned_points", "returned_points",
                "expired_points", "outstanding_points", "members", "active_by_month"])
    w.writerow(["summary", "active_members", "", "", "", "", "", r.active_members, ""])
    w.writerow(["summary", "cross_brand_members", "", "", "", "", "", r.cross_brand_members, ""])
    w.writerow(["summary", "total", r.earned_points, r.burned_points,
                sum(f.returned_points for f in r.flows), r.expired_points, r.liability_points,
                "", ""])
    w.writerow(["summary", "held_points", "", "", "", "", r.held_points, "", ""])
    w.writerow(["summary", "debt_points", "", "", "", "", r.debt_points, "", ""])
    liability = {x.partner_id: x.points for x in r.liability}
    flows = {f.partner_id: f for f in r.flows}
    for p in sorted(set(flows) | set(liability)):
        f = flows.get(p)
        w.writerow(["partner", p, f.earned_points if f else 0, f.burned_points if f else 0,
                    f.returned_points if f else 0, f.expired_points if f else 0,
                    liability.get(p, 0), "", ""])
    for c in r.cohorts:
        w.writerow(["cohort", c.month, "", "", "", "", "", c.members,
                    " ".join(str(a) for a in c.active)])
    return out.getvalue()


def programme_html(r: ProgrammeReport, *, plotly_src: str | None = None) -> str:
    liability = go.Figure(go.Bar(x=[x.partner_id for x in r.liability],
                                 y=[x.points for x in r.liability], marker_color="#264653"))
    liability.update_layout(title="Outstanding points by origin partner", height=380)
    flows = go.Figure([
        go.Bar(name="earned", x=[f.partner_id for f in r.flows],
               y=[f.earned_points for f in r.flows], marker_color="#2a9d8f"),
        go.Bar(name="burned", x=[f.partner_id for f in r.flows],
               y=[f.burned_points for f in r.flows], marker_color="#e76f51")])
    flows.update_layout(title="Points earned and burned by partner", barmode="group", height=380)
    width = max((len(c.active) for c in r.cohorts), default=1)
    cohorts = go.Figure(go.Heatmap(
        x=[f"+{k}" for k in range(width)], y=[c.month for c in r.cohorts] or ["-"],
        z=[[float(c.share(k)) * 100 if k < len(c.active) else None for k in range(width)]
           for c in r.cohorts] or [[0]], colorscale="Greens", zmin=0, zmax=100,
        hovertemplate="cohort %{y}, month %{x}: %{z:.1f} %<extra></extra>"))
    cohorts.update_layout(title="Cohort retention (share of each first-earn cohort active)",
                          height=420)
    charts = (liability.to_html(full_html=False, include_plotlyjs=plotly_src or True,
                                div_id="liability")
              + flows.to_html(full_html=False, include_plotlyjs=False, div_id="earn-burn")
              + cohorts.to_html(full_html=False, include_plotlyjs=False, div_id="cohorts"))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in programme_summary(r))
    return _page("Programme report", f"<table>{rows}</table>{charts}"
                 f"<pre>{html.escape(programme_table(r))}</pre>")


# --- campaign effectiveness ----------------------------------------------------------------------
def effectiveness_summary(e: Effectiveness) -> list[tuple[str, str]]:
    rows = [("campaign", f"{e.item.name} ({e.item.id})"), ("owner", e.item.owner),
            ("window", f"{e.window_start:%Y-%m-%d %H:%M} to {e.window_end:%Y-%m-%d %H:%M} UTC"),
            ("holdout", f"{e.item.holdout_percent} %"),
            ("members reached", f"{e.members_reached:,}"), ("rewards", f"{e.rewards:,}"),
            ("points issued", f"{e.points_issued:,}"),
            ("cost", f"{major(e.cost_minor)} {e.settlement_currency}"),
            ("redemptions", f"{e.redemptions:,} ({e.points_redeemed:,} points)"),
            ("treated / holdout / excluded members",
             f"{e.treated_members:,} / {e.holdout_members:,} / {e.excluded_members:,}")]
    for u in e.uplift:
        i = u.interval
        rows.append((f"mean spend treated ({u.currency}, minor)",
                     _opt(None if u.treated.mean is None else decimal(u.treated.mean))))
        rows.append((f"mean spend holdout ({u.currency}, minor)",
                     _opt(None if u.holdout.mean is None else decimal(u.holdout.mean))))
        rows.append((f"uplift per member ({u.currency}, minor)", _opt(i.difference)))
        rows.append((f"95 % interval ({u.currency}, minor)",
                     "" if i.low is None else f"{i.low} to {i.high}"))
    return rows


def effectiveness_table(items: Sequence[Effectiveness]) -> str:
    return "\n\n".join(table(["figure", "value"], [list(x) for x in effectiveness_summary(e)])
                       for e in items)


EFFECTIVENESS_COLUMNS = (
    "kind", "id", "owner", "window_start", "window_end", "holdout_percent", "members_reached",
    "rewards", "points_issued", "cost_minor", "settlement_currency", "redemptions",
    "points_redeemed", "treated_members", "holdout_members", "excluded_members", "currency",
    "treated_spend_sum_minor", "holdout_spend_sum_minor", "treated_mean_minor",
    "holdout_mean_minor", "uplift_minor", "ci95_low_minor", "ci95_high_minor",
    "degrees_of_freedom")


def effectiveness_csv(items: Sequence[Effectiveness]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EFFECTIVENESS_COLUMNS)
    for e in items:
        head = [e.item.kind, e.item.id, e.item.owner, e.window_start.isoformat(),
                e.window_end.isoformat(), e.item.holdout_percent, e.members_reached, e.rewards,
                e.points_issued, e.cost_minor, e.settlement_currency, e.redemptions,
                e.points_redeemed, e.treated_members, e.holdout_members, e.excluded_members]
        if not e.uplift:
            w.writerow([*head, *([""] * 9)])
        for u in e.uplift:
            i = u.interval
            w.writerow([
                *head, u.currency, u.treated.total, u.holdout.total,
                _opt(None if u.treated.mean is None else decimal(u.treated.mean)),
                _opt(None if u.holdout.mean is None else decimal(u.holdout.mean)),
                _opt(i.difference), _opt(i.low), _opt(i.high), _opt(i.degrees_of_freedom)])
    return out.getvalue()


def effectiveness_html(items: Sequence[Effectiveness], *, plotly_src: str | None = None) -> str:
    body, first = [], True
    for n, e in enumerate(items):
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in effectiveness_summary(e))
        body.append(f"<h2>{html.escape(e.item.name)}</h2><table>{rows}</table>")
        for u in e.uplift:
            if u.treated.mean is None or u.holdout.mean is None:
                continue
            i = u.interval
            means = [float(u.treated.mean) / 100, float(u.holdout.mean) / 100]
            fig = go.Figure(go.Bar(x=["treated", "holdout"], y=means,
                                   marker_color=["#2a9d8f", "#8d99ae"], name="mean spend"))
            if i.difference is not None and i.low is not None and i.high is not None:
                fig.add_trace(go.Scatter(
                    x=["uplift"], y=[float(i.difference) / 100], mode="markers",
                    name="uplift, 95 % interval", marker={"size": 12, "color": "#e76f51"},
                    error_y={"type": "data", "symmetric": False,
                             "array": [float(i.high - i.difference) / 100],
                             "arrayminus": [float(i.difference - i.low) / 100]}))
            fig.update_layout(title=f"Mean spend per eligible member and the uplift "
                              f"({u.currency}, major units)", height=380)
            body.append(fig.to_html(full_html=False, include_plotlyjs=(plotly_src or True)
                                    if first else False, div_id=f"uplift-{n}-{u.currency}"))
            first = False
    return _page("Campaign effectiveness", "".join(body) or "<p>No campaigns.</p>")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head>"
            f"<body><h1>{title}</h1>{body}</body></html>")
