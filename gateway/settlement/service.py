"""Compute, check, close and read settlement reports.

``build_report`` turns the grouped rows of ``SettlementRepository`` into a ``Report`` and
refuses it unless it balances (see the package docstring). ``close_period`` stores the report of
a period that has ended as an immutable snapshot, in one write transaction with an audit entry.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain

from sqlalchemy import Connection, Engine, insert, text

from gateway.core.clock import Clock
from gateway.core.errors import Forbidden, InvalidInput, NotFound
from gateway.core.principal import Principal
from gateway.db.retry import retrying
from gateway.db.tables import audit_log
from gateway.db.uow import UnitOfWork
from gateway.ledger.context import RuleSource
from gateway.settlement import pricing, rollups
from gateway.settlement.errors import PeriodClosed, SettlementUnbalanced
from gateway.settlement.model import (
    COALITION,
    Adjustment,
    ClosedPeriod,
    CoalitionLine,
    Figures,
    MatrixCell,
    PartnerLine,
    Period,
    Report,
)
from gateway.settlement.repository import FlowRow, LedgerAccount, SettlementRepository

Progress = Callable[[int, int], None]
STAGES = 4


@dataclass
class _Issue:
    issued: int = 0
    returned: int = 0


@dataclass
class _Cell:
    redeemed: int = 0
    refunded: int = 0


@dataclass
class _Priced:
    figures: Figures = field(default_factory=Figures)

    def add(self, more: Figures) -> None:
        self.figures = self.figures.plus(more)


@dataclass
class _Flows:
    """What the grouped transfer rows say, classified by account."""

    issue: dict[tuple[str, str | None, int | None, str | None], _Issue] = field(
        default_factory=lambda: defaultdict(_Issue))
    redeemed_net: dict[tuple[str, str | None], int] = field(
        default_factory=lambda: defaultdict(int))
    breakage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Bonus points by funder (a partner id, or COALITION) and the earn's price key.
    promotions: dict[tuple[str, str, str | None, int | None, str | None], _Issue] = field(
        default_factory=lambda: defaultdict(_Issue))
    member_change: int = 0


def build_report(conn: Connection, rules: RuleSource, period: Period, currency: str,
                 progress: Progress | None = None, *, stored: bool = True) -> Report:
    """The report from the stored sums of ``period``'s rolled days plus grouped passes over
    the rest of it (``rollups.uncovered``: the edges and the days not rolled up yet).
    ``stored=False``: grouped passes over all of it, ignoring the rollups (what they must
    equal; the tests and the benchmark compare the two)."""
    repo = SettlementRepository(conn)
    step = progress or (lambda _done, _total: None)
    known = repo.settled_accounts()
    closed_periods = repo.closed_periods()
    closed = {c.id: c.period for c in closed_periods}
    first, last = rollups.whole_days(period)
    rolled = repo.rolled_days(first, last) if stored else set()
    stored_flows, stored_lots = repo.rolled_sums(first, last) if rolled else ([], [])
    parts = rollups.uncovered(period, rolled)
    step(1, STAGES)
    flows = _classify(chain(stored_flows, *(repo.flows(p, sorted(known), closed_periods)
                                            for p in parts)), known)
    step(2, STAGES)
    cells: dict[tuple[str, str, int | None, str | None], _Cell] = defaultdict(_Cell)
    for row in chain(stored_lots, *(repo.redemption_lots(p, closed_periods) for p in parts)):
        pricing.prices(rules, row.redeemer, row.rule_partner_id, row.rule_version, currency)
        cell = cells[(row.origin, row.redeemer, row.rule_version, row.adjusts)]
        if row.kind == "return":
            cell.refunded += row.points
        else:
            cell.redeemed -= row.points
    step(3, STAGES)
    report = _assemble(repo.partners(), rules, period, currency, flows, cells, closed)
    step(4, STAGES)
    return report


def _classify(rows: Iterable[FlowRow], known: dict[int, LedgerAccount]) -> _Flows:
    flows = _Flows()
    for row in rows:
        if row.side is None:
            raise SettlementUnbalanced(f"a {row.kind} moved points between two settled "
                                       "accounts; settlement cannot attribute it")
        debit = known[row.side] if row.side > 0 else None
        credit = known[-row.side] if row.side < 0 else None
        flows.member_change += row.points if debit is not None else -row.points
        key = (row.partner_id, row.rule_partner_id, row.rule_version, row.adjusts)
        if debit is not None and debit.kind == "issued" and row.kind == "earn":
            flows.issue[(str(debit.partner_id), *key[1:])].issued += row.points
        elif credit is not None and credit.kind == "issued" and row.kind == "return":
            flows.issue[(str(credit.partner_id), *key[1:])].returned += row.points
        elif credit is not None and credit.kind == "redeemed":
            flows.redeemed_net[(str(credit.partner_id), row.adjusts)] += row.points
        elif debit is not None and debit.kind == "redeemed":
            flows.redeemed_net[(str(debit.partner_id), row.adjusts)] -= row.points
        elif credit is not None and credit.kind == "breakage":
            flows.breakage[row.partner_id] += row.points
        elif debit is not None and debit.kind in FUNDER_KINDS:
            flows.promotions[(_funder(debit), *key)].issued += row.points
        elif credit is not None and credit.kind in FUNDER_KINDS:
            flows.promotions[(_funder(credit), *key)].returned += row.points
        else:
            side = debit or credit
            raise SettlementUnbalanced(
                f"no settlement rule for a {row.kind} touching a {side.kind if side else '?'} "
                "account; the report would not be complete")
    return flows


FUNDER_KINDS = ("promotions", "bonus")


def _funder(account: LedgerAccount) -> str:
    """``partner:<id>:promotions`` is funded by that partner, ``coalition:bonus`` by the
    coalition (decision 020)."""
    return COALITION if account.kind == "bonus" else str(account.partner_id)


def _assemble(partner_rows: list[tuple[str, str, str]], rules: RuleSource, period: Period,
              currency: str, flows: _Flows,
              cells: dict[tuple[str, str, int | None, str | None], _Cell],
              closed: dict[str, Period]) -> Report:
    figures: dict[tuple[str, str | None], Figures] = defaultdict(Figures)
    issued_net: dict[str, int] = defaultdict(int)
    for (partner, rule_partner, version, adjusts), issue in flows.issue.items():
        price = pricing.prices(rules, partner, rule_partner, version, currency)
        per_point = price.price_per_point_issued_minor
        figures[(partner, adjusts)] = figures[(partner, adjusts)].plus(Figures(
            issued_points=issue.issued, issued_minor=pricing.pay(issue.issued, per_point),
            issue_returns_points=issue.returned,
            issue_returns_minor=pricing.paid(issue.returned, per_point)))
        issued_net[partner] += issue.issued - issue.returned
    bonus = _Priced()
    for (funder, partner, rule_partner, version, adjusts), issue in flows.promotions.items():
        # At the price of the rule version the earn was rated with (a return: its earn's).
        price = pricing.prices(rules, partner, rule_partner, version, currency)
        per_point = price.price_per_point_issued_minor
        priced = Figures(
            promotion_points=issue.issued, promotion_minor=pricing.pay(issue.issued, per_point),
            promotion_returns_points=issue.returned,
            promotion_returns_minor=pricing.paid(issue.returned, per_point))
        if funder == COALITION:
            bonus.add(priced)
        else:
            figures[(funder, adjusts)] = figures[(funder, adjusts)].plus(priced)
        # Bonus points join the earn's lot: the earning partner's points outstanding.
        issued_net[partner] += issue.issued - issue.returned

    kinds = {pid: kind for pid, _, kind in partner_rows}
    matrix: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    fee_base: dict[tuple[str, int | None, str | None], int] = defaultdict(int)
    redeemed_from: dict[str, int] = defaultdict(int)
    check: dict[tuple[str, str | None], int] = defaultdict(int)
    for (origin, redeemer, version, adjusts), cell in cells.items():
        price = pricing.prices(rules, redeemer, redeemer, version, currency)
        per_point = price.price_per_point_redeemed_minor
        got, back = pricing.paid(cell.redeemed, per_point), pricing.pay(cell.refunded, per_point)
        net_points = cell.redeemed - cell.refunded
        charity = kinds.get(redeemer) == "charity"
        figures[(redeemer, adjusts)] = figures[(redeemer, adjusts)].plus(Figures(
            redeemed_points=cell.redeemed, redeemed_minor=got,
            redeem_refunds_points=cell.refunded, redeem_refunds_minor=back,
            donations_points=net_points if charity else 0,
            donations_minor=got - back if charity else 0))
        matrix[(origin, redeemer)][0] += net_points
        matrix[(origin, redeemer)][1] += got - back
        fee_base[(redeemer, version, adjusts)] += net_points
        redeemed_from[origin] += net_points
        check[(redeemer, adjusts)] += net_points
    for (redeemer, version, adjusts), points in fee_base.items():
        price = pricing.prices(rules, redeemer, redeemer, version, currency)
        fee = pricing.pay(points, price.fee_share * price.price_per_point_redeemed_minor)
        figures[(redeemer, adjusts)] = figures[(redeemer, adjusts)].plus(Figures(fee_minor=fee))

    _check_points(check, flows.redeemed_net)
    lines = _lines(partner_rows, figures, closed)
    coalition = _coalition(rules, period, currency, figures, flows, issued_net, redeemed_from,
                           bonus.figures)
    total = sum(line.net_minor for line in lines) + coalition.net_minor
    if total != 0:
        raise SettlementUnbalanced(
            f"partners' nets plus the coalition's line sum to {total} minor units, not 0")
    cells_out = tuple(MatrixCell(o, r, pts, minor) for (o, r), (pts, minor)
                      in sorted(matrix.items()) if pts or minor)
    return Report(period, currency, lines, coalition, cells_out)


def _check_points(from_lots: dict[tuple[str, str | None], int],
                  from_transfers: dict[tuple[str, str | None], int]) -> None:
    """The matrix (lot movements) and the redeemed accounts (transfers) are two records of the
    same redemptions; they must agree per partner and adjustment."""
    for key in sorted(set(from_lots) | set(from_transfers), key=str):
        if from_lots.get(key, 0) != from_transfers.get(key, 0):
            raise SettlementUnbalanced(
                f"redeemed points at {key[0]!r}: lots say {from_lots.get(key, 0)}, transfers "
                f"say {from_transfers.get(key, 0)}")


def _lines(partner_rows: list[tuple[str, str, str]],
           figures: dict[tuple[str, str | None], Figures],
           closed: dict[str, Period]) -> tuple[PartnerLine, ...]:
    lines = []
    for partner_id, name, kind in partner_rows:
        adjustments = tuple(
            Adjustment(adjusts, closed[adjusts].start, closed[adjusts].end, found)
            for (pid, adjusts), found in sorted(figures.items(), key=lambda kv: str(kv[0]))
            if pid == partner_id and adjusts is not None)
        lines.append(PartnerLine(partner_id, name, kind, figures.get((partner_id, None),
                                                                     Figures()), adjustments))
    return tuple(lines)


def _coalition(rules: RuleSource, period: Period, currency: str,
               figures: dict[tuple[str, str | None], Figures], flows: _Flows,
               issued_net: dict[str, int], redeemed_from: dict[str, int],
               bonus: Figures) -> CoalitionLine:
    income = sum(f.issued_minor - f.issue_returns_minor for f in figures.values())
    promotion_income = sum(f.promotion_net_minor for f in figures.values())
    cost = sum(f.redeemed_minor - f.redeem_refunds_minor for f in figures.values())
    fees = sum(f.fee_minor for f in figures.values())
    breakage_minor = liability_minor = 0
    for origin in sorted(set(issued_net) | set(redeemed_from) | set(flows.breakage)):
        per_point = pricing.prices_at(rules, origin, period.end,
                                      currency).price_per_point_issued_minor
        expired = flows.breakage.get(origin, 0)
        outstanding = issued_net.get(origin, 0) - redeemed_from.get(origin, 0) - expired
        breakage_minor += pricing.paid(expired, per_point)
        liability_minor += pricing.paid(outstanding, per_point)
    return CoalitionLine(
        issue_income_minor=income, redemption_cost_minor=cost, fees_minor=fees,
        net_minor=income + promotion_income - cost + fees,
        breakage_points=sum(flows.breakage.values()),
        breakage_minor=breakage_minor, bonus_points=bonus.promotion_points,
        liability_change_points=flows.member_change, liability_change_minor=liability_minor,
        margin_minor=income + promotion_income - cost - breakage_minor - liability_minor,
        promotion_income_minor=promotion_income,
        bonus_returns_points=bonus.promotion_returns_points, bonus_minor=bonus.promotion_minor,
        bonus_returns_minor=bonus.promotion_returns_minor)


# --- the commands -------------------------------------------------------------------------------
@contextmanager
def _snapshot_transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction whose every statement reads the same snapshot of the ledger.

    A report is a dozen statements; under PostgreSQL's default READ COMMITTED each would see
    the postings committed since the one before, and the figures would not add up. REPEATABLE
    READ (read only for reports, so a replica can serve them) fixes one snapshot at the first
    query. A close also locks ``settlement_periods`` first (before the snapshot is taken) so two
    overlapping closes queue and the second sees the first. SQLite: a read transaction in WAL
    mode is one snapshot already, and ``BEGIN IMMEDIATE`` serialises the closes."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ",
                                   postgresql_readonly=not write)
        else:
            conn.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # A report is a few big grouped passes: JIT compiling them cost ~0.9 s per
                # statement at 1M operations (more than running them), and the hash aggregate
                # needs room to stay in memory. Both for this transaction only.
                conn.execute(text("SET LOCAL jit = off"))
                conn.execute(text("SET LOCAL work_mem = '64MB'"))
            if write and conn.dialect.name == "postgresql":
                conn.execute(text("LOCK TABLE settlement_periods IN SHARE ROW EXCLUSIVE MODE"))
            yield conn


def settlement_report(engine: Engine, rules: RuleSource, period: Period, currency: str,
                      progress: Progress | None = None) -> Report:
    """The report for ``period``. A closed period is served from its stored snapshot (frozen:
    the ledger is not read, so it costs the same at any size); ``recompute_closed`` checks that
    the ledger still reproduces it. An open period adds the stored sums of its days already
    rolled up (decision 016: by ``gateway settlement rollup`` or by a close) to grouped passes
    over the ledger rows of the rest. A report only reads: a query never takes the write lock
    (on SQLite that would stall every write behind it)."""
    return retrying(lambda: _report(engine, rules, period, currency, progress))


# Days stored per write transaction by :func:`roll_up`: each transaction holds the write lock
# for one bounded grouped pass (about a week of rows), never for the whole span asked for.
ROLL_UP_DAYS_PER_TRANSACTION = 7


def roll_up(engine: Engine, clock: Clock, period: Period,
            progress: Progress | None = None) -> int:
    """Store the sums of ``period``'s final days that are not stored yet, at most
    ``ROLL_UP_DAYS_PER_TRANSACTION`` days per write transaction; how many it stored. A cheap
    read first, so a span whose days are all rolled up takes no write lock."""
    now = clock.now()
    with UnitOfWork(engine, write=False) as uow:
        days = rollups.missing_days(uow.conn, period, now)
    done = 0
    for first in range(0, len(days), ROLL_UP_DAYS_PER_TRANSACTION):
        chunk = days[first:first + ROLL_UP_DAYS_PER_TRANSACTION]
        part = Period.stored(rollups.start_of(chunk[0]), rollups.start_of(chunk[-1]) + rollups.DAY)

        def run(part: Period = part) -> int:
            with _snapshot_transaction(engine, write=True) as conn:
                return rollups.roll_up(conn, part, now)
        done += retrying(run)
        if progress is not None:
            progress(first + len(chunk), len(days))
    return done


def ledger_span(engine: Engine) -> Period | None:
    """The whole days holding any operation, or ``None`` for an empty ledger."""
    with UnitOfWork(engine, write=False) as uow:
        return rollups.ledger_span(uow.conn)


def check_rollups(engine: Engine) -> list[str]:
    """``verify``: every stored day's sums against the ledger rows they sum (an empty list:
    all agree). Costs one grouped pass over every rolled day."""
    with _snapshot_transaction(engine, write=False) as conn:
        return list(rollups.check(conn))


def _report(engine: Engine, rules: RuleSource, period: Period, currency: str,
            progress: Progress | None) -> Report:
    with _snapshot_transaction(engine, write=False) as conn:
        stored = SettlementRepository(conn).closed_snapshot(period)
        if stored is not None:
            return _frozen(period, *stored)
        return build_report(conn, rules, period, currency, progress)


def _frozen(period: Period, body: str, sha256: str) -> Report:
    if hashlib.sha256(body.encode()).hexdigest() != sha256:
        raise SettlementUnbalanced(f"the stored snapshot of {period.id} does not match its "
                                   "hash: the closed period's record was altered")
    return Report.from_canonical(body)


def recompute_closed(engine: Engine, rules: RuleSource, period: Period,
                     currency: str, progress: Progress | None = None) -> Report:
    """Compute a closed period's report again from the ledger and check it reproduces the
    stored hash (``SETTLEMENT_UNBALANCED`` if the ledger under it changed); a period that is
    not closed is ``NOT_FOUND``. The audit of guarantee 3, at the cost of a full report."""
    def run() -> Report:
        with _snapshot_transaction(engine, write=False) as conn:
            stored = SettlementRepository(conn).closed_snapshot(period)
            if stored is None:
                raise NotFound(f"period {period.id} is not closed", field="end")
            # From the rows themselves, not the day rollups the close stored (an audit).
            report = build_report(conn, rules, period, currency, progress, stored=False)
        if report.sha256 != stored[1]:
            raise SettlementUnbalanced(
                f"period {period.id} was closed with hash {stored[1]} but now computes "
                f"{report.sha256}: the ledger under a closed period changed")
        return report
    return retrying(run)


# The wire strings of ``gateway.auth.scopes.Scope`` (a layer above): a Principal holds strings.
READ_SCOPE = "settlement:read"
CLOSE_SCOPE = "settlement:close"


def check_closer(principal: Principal) -> None:
    """Who may close a period: a coalition-wide client holding ``settlement:close``. A period
    settles every partner at once, so a client bound to one partner never may, whatever scopes
    it holds (one created before bound clients lost ``settlement:close`` may still hold it);
    a bound finance client is told that reason rather than "lacks the scope"."""
    if principal.partner_id is not None and (principal.has(READ_SCOPE)
                                             or principal.has(CLOSE_SCOPE)):
        raise Forbidden(CLOSE_SCOPE, (
            f"a finance client bound to partner {principal.partner_id!r} cannot "
            "close coalition periods; closing needs a coalition-wide finance client"))
    if not principal.has(CLOSE_SCOPE):
        raise Forbidden(CLOSE_SCOPE)


def close_period(engine: Engine, rules: RuleSource, clock: Clock, period: Period,
                 currency: str, *, actor: str, principal: Principal | None = None,
                 progress: Progress | None = None) -> ClosedPeriod:
    """Freeze ``period``: store its report and hash. Irreversible; needs a period that has
    ended and overlaps no closed period, and, when a client asks (``principal``; the operator's
    CLI has none), a client ``check_closer`` admits."""
    if principal is not None:
        check_closer(principal)
    return retrying(lambda: _close(engine, rules, clock, period, currency, actor, progress))


def _close(engine: Engine, rules: RuleSource, clock: Clock, period: Period, currency: str,
           actor: str, progress: Progress | None) -> ClosedPeriod:
    period.check_closable()
    with _snapshot_transaction(engine, write=True) as conn:
        now = clock.now()
        if period.end > now:
            raise InvalidInput(f"the period ends {period.end.isoformat()}, in the future; "
                               "only a period that has ended can be closed", field="end")
        repo = SettlementRepository(conn)
        for other in repo.closed_periods():
            if other.period.start < period.end and period.start < other.period.end:
                same = other.period == period
                raise PeriodClosed(
                    f"period {period.id} is closed already (at {other.closed_at.isoformat()}); "
                    "a closed period cannot be reopened or changed" if same else
                    f"period {period.id} overlaps closed period {other.id}",
                    period_id=other.id)
        rollups.roll_up(conn, period, now)  # its final days, stored for good in this commit
        report = build_report(conn, rules, period, currency, progress)
        closed = ClosedPeriod(period.id, period, now, actor, report.sha256)
        repo.insert_closed(closed, report.canonical_json())
        conn.execute(insert(audit_log), {
            "at": now, "actor": actor, "action": "settlement.closed", "subject": period.id,
            "detail": json.dumps({"sha256": report.sha256})})
    return closed


def closed_periods(engine: Engine) -> list[ClosedPeriod]:
    with UnitOfWork(engine, write=False) as uow:
        return SettlementRepository(uow.conn).closed_periods()


def snapshot(engine: Engine, period_id: str) -> tuple[str, str]:
    """The stored canonical JSON and SHA-256 of a closed period."""
    with UnitOfWork(engine, write=False) as uow:
        found = SettlementRepository(uow.conn).snapshot(period_id)
    if found is None:
        raise NotFound(f"no closed period {period_id!r}", field="periodId")
    return found
