"""Campaign (programme item) effectiveness: what it gave, what it cost, and what it changed.

For one item over its window ``[starts, min(ends, until))``:

* reach (members who got it), rewards and points, from the item's source;
* cost: those points priced like settlement prices a funder's promotion points (the issue
  price of the rule version the earn was rated with; a partner pays CEIL, a return is credited
  FLOOR; ``gateway.settlement.pricing``), in the settlement currency, one rounding per rule
  version over the item's life (a settlement period rounds per period, so the two may differ
  by a minor unit per version and period);
* redemptions by the reached members in the window (any partner): operations and points;
* uplift: each treated and each held-out member's spend at the item's partners in the window
  (earn amounts minus return amounts, by ``recorded_at``; one row per member, streamed, read
  through ``ix_operations_daily_cap``: member, partner, kind, recorded_at), summed exactly per
  currency into :class:`stats.Moments`; the mean difference (treated - holdout) and its 95 %
  Welch interval (``gateway.reports.stats``). A member in both groups (a later version changed
  the holdout) is left out and counted in ``excluded``.

Eligibility is "the item's conditions held on an earn in the window" on both sides: a treated
member is one it was given to, a held-out member one the engine held out
(docs/decisions/034). Members skipped for a budget, limit or stacking are in neither group.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from gateway.ledger.context import RuleSource
from gateway.reports.items import ItemSource, ProgrammeItem, stored
from gateway.reports.stats import Interval, Moments, welch
from gateway.settlement import pricing


@dataclass(frozen=True, slots=True)
class Uplift:
    currency: str
    treated: Moments
    holdout: Moments
    interval: Interval


@dataclass(frozen=True, slots=True)
class Effectiveness:
    item: ProgrammeItem
    window_start: datetime
    window_end: datetime
    members_reached: int
    rewards: int
    points_issued: int  # net of reversals
    cost_minor: int  # in ``settlement_currency``
    settlement_currency: str
    redemptions: int  # redeem and capture operations of reached members in the window
    points_redeemed: int
    treated_members: int
    holdout_members: int
    excluded_members: int  # in both groups
    uplift: tuple[Uplift, ...]  # one per currency spent in


def _partners_sql(item: ProgrammeItem) -> tuple[str, dict[str, str]]:
    names = {f"p{i}": p for i, p in enumerate(sorted(item.partners))}
    return ", ".join(f":{k}" for k in names) or "NULL", names


def effectiveness(engine: Engine, source: ItemSource, item: ProgrammeItem, rules: RuleSource,
                  currency: str, until: datetime) -> Effectiveness:
    with engine.connect() as conn:
        return read(conn, source, item, rules, currency, until)


def read(conn: Connection, source: ItemSource, item: ProgrammeItem, rules: RuleSource,
         currency: str, until: datetime) -> Effectiveness:
    end = min(item.ends, until) if item.ends is not None else until
    end = max(end, item.starts)
    given = source.given(conn, item)
    cost = 0
    for bucket in given.priced:
        prices = (pricing.prices(rules, bucket.partner_id, bucket.partner_id,
                                 bucket.rule_version, currency)
                  if bucket.rule_version is not None
                  else pricing.prices_at(rules, bucket.partner_id, end, currency))
        per_point = prices.price_per_point_issued_minor
        cost += pricing.pay(bucket.issued, per_point) - pricing.paid(bucket.returned, per_point)
    groups, group_params = source.groups_sql(conn, item)
    partners, partner_params = _partners_sql(item)
    params = {**group_params, **partner_params, "start": stored(conn, item.starts),
              "end": stored(conn, end)}
    spend = text(
        f"SELECT g.member_id, g.treated, g.holdout, o.currency, "  # noqa: S608 (bound values)
        "SUM(CASE WHEN o.kind = 'earn' THEN o.amount_minor ELSE -o.amount_minor END) "
        f"FROM ({groups}) g LEFT JOIN operations o ON o.member_id = g.member_id "
        f"AND o.partner_id IN ({partners}) AND o.kind IN ('earn', 'return') "
        "AND o.recorded_at >= :start AND o.recorded_at < :end AND o.amount_minor IS NOT NULL "
        "GROUP BY g.member_id, g.treated, g.holdout, o.currency")
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _member, treated, holdout, cur, amount in conn.execute(spend, params):
        group = "excluded" if treated and holdout else "treated" if treated else "holdout"
        if cur is None or group == "excluded":
            continue
        x = int(amount or 0)
        cell = sums[(group, str(cur))]
        cell[0] += x
        cell[1] += x * x
    # Members, not rows (one row per member and currency): a member with no spend counts 0.
    counts = _member_counts(conn, groups, params)
    uplift = []
    for cur in sorted({c for _, c in sums}):
        t, h = sums.get(("treated", cur), [0, 0]), sums.get(("holdout", cur), [0, 0])
        mt = Moments(counts["treated"], t[0], t[1])
        mh = Moments(counts["holdout"], h[0], h[1])
        uplift.append(Uplift(cur, mt, mh, welch(mt, mh)))
    redeemed = text(
        f"SELECT COUNT(o.id), COALESCE(SUM(-o.points), 0) FROM ({groups}) g "  # noqa: S608
        "JOIN operations o ON o.member_id = g.member_id AND o.kind IN ('redeem', 'capture') "
        "AND o.recorded_at >= :start AND o.recorded_at < :end WHERE g.treated = 1")
    n_redeemed, points_redeemed = conn.execute(redeemed, params).one()
    return Effectiveness(
        item, item.starts, end, given.members, given.rewards, given.points, cost, currency,
        int(n_redeemed or 0), int(points_redeemed or 0), counts["treated"], counts["holdout"],
        counts["excluded"], tuple(uplift))


def _member_counts(conn: Connection, groups: str, params: dict[str, object]) -> dict[str, int]:
    row = conn.execute(text(  # the source's SQL; every value bound
        "SELECT COALESCE(SUM(CASE WHEN treated = 1 AND holdout = 0 THEN 1 ELSE 0 END), 0), "  # noqa: S608
        "COALESCE(SUM(CASE WHEN treated = 0 AND holdout = 1 THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN treated = 1 AND holdout = 1 THEN 1 ELSE 0 END), 0) "
        f"FROM ({groups}) g"), params).one()
    return {"treated": int(row[0]), "holdout": int(row[1]), "excluded": int(row[2])}
