"""Reconcile a partner's own statement (CSV) against the ledger for one period.

The statement is parsed and validated whole before anything is compared, so a malformed file is
refused with the line and column at fault and nothing is half-imported (nothing is stored at
all: a reconciliation is a read). Lines are matched on ``partner_reference`` = the idempotency
key the partner sent with the operation, unique per partner by the ledger's guarantee 5. The
ledger side is streamed: the partner's operations recorded in ``[start, end)`` that carry a key
(expiry and other coalition-initiated operations have none and are not on a partner's statement),
and a charity's donations, referenced by their operation id (a member's command has no partner
key).

One rule places an operation in a period, here and in the report: the time the gateway
**recorded** it (``recordedAt`` in every answer), never the ``occurredAt`` the partner sent.
``occurred_at`` is compared at the precision the statement gives (a statement in whole seconds
matches a ledger time with milliseconds in the same second). ``statement_csv`` writes a
partner's own ledger lines for a period in exactly the format ``parse_statement`` reads.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, func, or_, select

from gateway.core.errors import NotFound
from gateway.core.money import check_currency
from gateway.db.tables import operations, partners
from gateway.db.uow import UnitOfWork
from gateway.settlement.errors import StatementMalformed
from gateway.settlement.model import Period

COLUMNS = ("partner_reference", "operation_type", "points", "amount_minor", "currency",
           "occurred_at")
OPERATION_TYPES = ("earn", "redeem", "authorise", "capture", "void", "return", "donate")
# A donation is the member's command (keyed per member, not per partner): on the charity's
# statement its reference is the gateway's operation id, the one the charity is told of.
KEYLESS_TYPES = ("donate",)
COMPARED = COLUMNS[1:]
MAX_LINES = 1_000_000


@dataclass(frozen=True, slots=True)
class StatementLine:
    partner_reference: str
    operation_type: str
    points: int
    amount_minor: int | None
    currency: str | None
    occurred_at: datetime
    line: int = 0  # where it was in the file (0: from the ledger)
    precision: int = 6  # digits of a second in occurred_at as written (the ledger keeps 6)
    recorded_at: datetime | None = None  # ledger lines only: what places it in a period

    def value(self, name: str, precision: int = 6) -> str:
        found = getattr(self, name)
        if isinstance(found, datetime):
            cut = 10 ** (6 - min(precision, 6))
            return found.replace(microsecond=found.microsecond // cut * cut).astimezone(
                UTC).isoformat()
        return "" if found is None else str(found)


@dataclass(frozen=True, slots=True)
class Difference:
    field: str
    statement: str
    ledger: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    statement: StatementLine
    ledger: StatementLine
    differences: tuple[Difference, ...]


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    points: int = 0
    amount_minor: int = 0


@dataclass
class Reconciliation:
    partner_id: str
    period: Period
    matched: list[StatementLine] = field(default_factory=list)
    missing_in_ledger: list[StatementLine] = field(default_factory=list)
    missing_in_statement: list[StatementLine] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)

    def totals(self) -> dict[str, Totals]:
        def of(lines: list[StatementLine]) -> Totals:
            return Totals(len(lines), sum(x.points for x in lines),
                          sum(x.amount_minor or 0 for x in lines))
        return {"matched": of(self.matched), "missing_in_ledger": of(self.missing_in_ledger),
                "missing_in_statement": of(self.missing_in_statement),
                "mismatched": of([x.statement for x in self.mismatched])}

    def to_csv(self) -> str:
        """One row per line and per differing field: status, reference, field, both values,
        and the statement's line number (empty for a line only the ledger has)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["status", "partner_reference", "field", "statement", "ledger",
                         "statement_line"])
        for line in self.matched:
            writer.writerow(["matched", line.partner_reference, "", "", "", line.line])
        for mismatch in self.mismatched:
            for d in mismatch.differences:
                writer.writerow(["mismatched", mismatch.statement.partner_reference, d.field,
                                 d.statement, d.ledger, mismatch.statement.line])
        for line in self.missing_in_ledger:
            writer.writerow(["missing_in_ledger", line.partner_reference, "", "", "", line.line])
        for line in self.missing_in_statement:
            writer.writerow(["missing_in_statement", line.partner_reference, "", "", "", ""])
        return out.getvalue()

    @property
    def differs(self) -> bool:
        """Anything but matched lines: the CLI exits 1, like ``gateway verify``."""
        return bool(self.missing_in_ledger or self.missing_in_statement or self.mismatched)


def parse_statement(text: str) -> dict[str, StatementLine]:
    """Every line validated, or ``StatementMalformed`` naming the first bad line and column."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise StatementMalformed("the statement is empty; it needs a header row", line=1,
                                 column=None) from None
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise StatementMalformed(f"header lacks the column(s) {', '.join(missing)}; expected "
                                 f"{','.join(COLUMNS)}", line=1, column=missing[0])
    index = {name: header.index(name) for name in COLUMNS}
    lines: dict[str, StatementLine] = {}
    try:
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise StatementMalformed(f"{len(row)} fields; the header has {len(header)}",
                                         line=number, column=None)
            if len(lines) >= MAX_LINES:
                raise StatementMalformed(f"more than {MAX_LINES} lines", line=number,
                                         column=None)
            line = _line({n: row[i].strip() for n, i in index.items()}, number)
            if line.partner_reference in lines:
                first = lines[line.partner_reference].line
                raise StatementMalformed(f"partner_reference {line.partner_reference!r} "
                                         f"repeats line {first}", line=number,
                                         column="partner_reference")
            lines[line.partner_reference] = line
    except csv.Error as exc:
        raise StatementMalformed(f"not valid CSV: {exc}", line=reader.line_num,
                                 column=None) from None
    return lines


def _line(cells: dict[str, str], number: int) -> StatementLine:
    def bad(column: str, why: str) -> StatementMalformed:
        return StatementMalformed(f"{why} (got {cells[column]!r})", line=number, column=column)

    if not cells["partner_reference"] or len(cells["partner_reference"]) > 200:
        raise bad("partner_reference", "must be 1 to 200 characters")
    if cells["operation_type"] not in OPERATION_TYPES:
        raise bad("operation_type", f"must be one of {', '.join(OPERATION_TYPES)}")
    try:
        points = int(cells["points"])
    except ValueError:
        raise bad("points", "must be a whole number of points") from None
    amount: int | None = None
    if cells["amount_minor"]:
        try:
            amount = int(cells["amount_minor"])
        except ValueError:
            raise bad("amount_minor", "must be an integer number of minor units") from None
    currency = cells["currency"] or None
    if currency is not None:
        try:
            check_currency(currency)
        except ValueError:
            raise bad("currency", "must be an ISO 4217 code like EUR") from None
    try:
        occurred_at = datetime.fromisoformat(cells["occurred_at"])
    except ValueError:
        raise bad("occurred_at", "must be an ISO 8601 time like 2026-01-31T09:30:00Z") from None
    if occurred_at.tzinfo is None:
        raise bad("occurred_at", "needs a time zone offset (Z or +02:00)")
    fraction = _FRACTION.search(cells["occurred_at"])
    return StatementLine(cells["partner_reference"], cells["operation_type"], points, amount,
                         currency, occurred_at.astimezone(UTC), number,
                         len(fraction.group(1)) if fraction else 0)


_FRACTION = re.compile(r"T\d\d(?::?\d\d){2}[.,](\d+)")


def reconcile(engine: Engine, partner_id: str, period: Period, text: str) -> Reconciliation:
    """``NotFound`` (field ``partnerId``) for a partner that does not exist, before parsing."""
    _check_partner(engine, partner_id)
    statement = parse_statement(text)
    result = Reconciliation(partner_id, period)
    for ledger in _ledger_lines(engine, partner_id, period):
        theirs = statement.pop(ledger.partner_reference, None)
        if theirs is None:
            result.missing_in_statement.append(ledger)
            continue
        differences = tuple(
            Difference(name, theirs.value(name), ledger.value(name, theirs.precision))
            for name in COMPARED if theirs.value(name) != ledger.value(name, theirs.precision))
        if differences:
            result.mismatched.append(Mismatch(theirs, ledger, differences))
        else:
            result.matched.append(theirs)
    result.missing_in_ledger.extend(sorted(statement.values(), key=lambda x: x.line))
    return result


def statement_csv(engine: Engine, partner_id: str, period: Period) -> tuple[str, int]:
    """A partner's own ledger lines recorded in ``period`` as a statement CSV (the columns
    ``parse_statement`` reads, then ``recorded_at``, which it ignores), and the line count."""
    _check_partner(engine, partner_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, "recorded_at"])
    count = 0
    for line in _ledger_lines(engine, partner_id, period):
        writer.writerow([line.value(name) for name in COLUMNS]
                        + [line.recorded_at.astimezone(UTC).isoformat()
                           if line.recorded_at else ""])
        count += 1
    return out.getvalue(), count


def _check_partner(engine: Engine, partner_id: str) -> None:
    with UnitOfWork(engine, write=False) as uow:
        found = uow.conn.execute(select(partners.c.id).where(partners.c.id == partner_id)).first()
    if found is None:
        raise NotFound(f"no partner {partner_id!r}", field="partnerId")


def _ledger_lines(engine: Engine, partner_id: str, period: Period) -> Iterator[StatementLine]:
    o = operations.c
    stmt = (select(func.coalesce(o.idempotency_key, o.id), o.kind, o.points, o.amount_minor,
                   o.currency, o.occurred_at, o.recorded_at)
            .where(o.partner_id == partner_id, o.recorded_at >= period.start,
                   o.recorded_at < period.end,
                   or_(o.idempotency_key.is_not(None), o.kind.in_(KEYLESS_TYPES)))
            .order_by(o.recorded_at, o.id))
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execution_options(stream_results=True, yield_per=1000).execute(stmt)
        for r in rows:
            yield StatementLine(str(r[0]), str(r[1]), int(r[2]),
                                None if r[3] is None else int(r[3]), r[4], _utc(r[5]),
                                recorded_at=_utc(r[6]))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
