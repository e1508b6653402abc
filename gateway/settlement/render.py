"""A report as a person or a spreadsheet reads it: terminal tables, CSV, JSON.

Money is printed as decimal strings of the settlement currency's major unit computed from the
integer minor units (no float), and written as integer minor units in CSV and JSON. Every
coalition-wide view balances on its face: the partners' nets and the coalition's line (a
``coalition`` row in CSV, rows "Coalition" and "Total" in the table) sum to zero. People read
display names; machine formats keep ids (CSV adds a ``name`` column)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from gateway.settlement.model import Figures, PartnerLine, Period, Report

LINE_COLUMNS = ("partner_id", "kind", "adjusts_period", "issued_points", "issued_minor",
                "issue_returns_points", "issue_returns_minor", "redeemed_points",
                "redeemed_minor", "redeem_refunds_points", "redeem_refunds_minor",
                "donations_points", "donations_minor", "fee_minor", "net_minor", "name")
FIGURE_COLUMNS = LINE_COLUMNS[3:-1]
# Issue 12, after ``name`` so the columns before keep their places for existing readers.
PROMOTION_COLUMNS = ("promotion_points", "promotion_minor", "promotion_returns_points",
                     "promotion_returns_minor")


def names(report: Report) -> Callable[[str], str]:
    """A partner's display name by id (the id itself for one the report does not list)."""
    by_id = {p.partner_id: p.name for p in report.partners}
    return lambda partner_id: by_id.get(partner_id, partner_id)


def period_title(period: Period) -> str:
    """``2026-01-01 00:00 to 2026-02-01 00:00 UTC``; seconds only when a bound has them."""
    fmt = "%Y-%m-%d %H:%M" if not (period.start.second or period.end.second) else \
        "%Y-%m-%d %H:%M:%S"
    return f"{period.start.strftime(fmt)} to {period.end.strftime(fmt)} UTC"


def major(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    def fmt(row: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def report_text(report: Report, partner_id: str | None = None) -> str:
    cur = report.currency
    lines = [f"Settlement {period_title(report.period)}"
             f" ({cur}; net > 0: the coalition pays the partner)", ""]
    name = names(report)
    rows = [[p.name, str(p.figures.issued_points), major(p.figures.issued_minor),
             str(p.figures.issue_returns_points), major(p.figures.issue_returns_minor),
             str(p.figures.redeemed_points), major(p.figures.redeemed_minor),
             str(p.figures.redeem_refunds_points), major(p.figures.redeem_refunds_minor),
             major(p.figures.donations_minor), major(p.figures.fee_minor),
             major(p.adjustments_minor), major(p.net_minor)]
            for p in _visible(report, partner_id)]
    if partner_id is None:
        blank = [""] * 11
        net = report.coalition.net_minor
        rows += [["Coalition", *blank, major(net)],
                 ["Total", *blank, major(sum(p.net_minor for p in report.partners) + net)]]
    lines.append(table(["partner", "issued", "payable", "returned", "credited", "redeemed",
                        "receivable", "refunded", "charged", "donations", "fee", "adjust",
                        "net"], rows))
    for p in _visible(report, partner_id):
        for a in p.adjustments:
            lines.append(f"  adjustment {p.name} for closed period {a.period_id}: "
                         f"net {major(a.figures.net_minor)} {cur}")
    if partner_id is None:
        c = report.coalition
        lines += ["", table(["coalition", "minor units", cur], [
            [name, str(value), major(value)] for name, value in (
                ("issue income", c.issue_income_minor),
                ("redemption cost", c.redemption_cost_minor), ("fees", c.fees_minor),
                ("breakage", c.breakage_minor), ("liability change", c.liability_change_minor),
                ("margin", c.margin_minor), ("net", c.net_minor))]),
            f"breakage {c.breakage_points} points, bonuses {c.bonus_points} points, "
            f"outstanding liability change {c.liability_change_points} points",
            f"sha256 {report.sha256}"]
    promotions = promotion_rows(report, partner_id)
    if promotions:
        lines += ["", table(["funder", "bonus points", "reversed", "net points", f"cost {cur}",
                             "paid by"], promotions)]
    cells = [[name(m.origin), name(m.redeemer), str(m.points), major(m.minor)]
             for m in report.matrix
             if partner_id in (None, m.origin, m.redeemer)]
    if cells:
        lines += ["", table(["origin", "redeemer", "points", cur], cells)]
    return "\n".join(lines) + "\n"


def promotion_rows(report: Report, partner_id: str | None = None) -> list[list[str]]:
    """The promotion lines per funder: a partner funder pays its net cost to the coalition;
    the coalition's own campaigns are its own cost (not shown to a partner-bound view)."""
    name = names(report)
    return [[name(f.funder) if f.pays else "Coalition", str(f.points), str(f.returned_points),
             str(f.net_points), major(f.net_minor), "funder" if f.pays else "coalition (own)"]
            for f in report.funders() if partner_id in (None, f.funder)]


def report_csv(report: Report, partner_id: str | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*LINE_COLUMNS, *PROMOTION_COLUMNS))
    for p in _visible(report, partner_id):
        writer.writerow(_row(p, "", p.figures))
        for a in p.adjustments:
            writer.writerow(_row(p, a.period_id, a.figures))
    if partner_id is None:  # the coalition's line: the net_minor column sums to 0
        c = report.coalition  # its promotion columns: its own campaigns (its own cost)
        writer.writerow(["coalition", "coalition", "", *([""] * len(FIGURE_COLUMNS[:-1])),
                         str(c.net_minor), "Coalition", *(str(v) for v in (
                             c.bonus_points, c.bonus_minor, c.bonus_returns_points,
                             c.bonus_returns_minor))])
    return out.getvalue()


def report_json(report: Report, partner_id: str | None = None) -> str:
    body = report.canonical()
    if partner_id is not None:
        body = {"period": body["period"], "currency": body["currency"],
                "partners": [p for p in body["partners"] if p["partner_id"] == partner_id],
                "matrix": [m for m in body["matrix"]
                           if partner_id in (m["origin"], m["redeemer"])]}
    else:
        body["sha256"] = report.sha256
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def _row(p: PartnerLine, adjusts: str, f: Figures) -> list[str]:
    return [p.partner_id, p.kind, adjusts, *(str(getattr(f, c)) for c in FIGURE_COLUMNS),
            p.name, *(str(getattr(f, c)) for c in PROMOTION_COLUMNS)]


def _visible(report: Report, partner_id: str | None) -> list[PartnerLine]:
    return [p for p in report.partners if partner_id in (None, p.partner_id)]
