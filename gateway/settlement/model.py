"""The settlement report as values: a period, partner lines, the coalition's line, the matrix.

Sign convention everywhere: a partner's ``net_minor`` is positive when the coalition pays the
partner and negative when the partner pays the coalition; the coalition's ``net_minor`` is
positive when the coalition keeps money. ``canonical_json`` is the form that is hashed and stored
when a period closes: sorted keys, no whitespace, integers as JSON numbers, times as ISO 8601 UTC.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from gateway.core.errors import InvalidInput

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # before the coalition: a typo, not a period
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_REPORT = timedelta(days=5 * 366)
MAX_CLOSE = timedelta(days=366)  # a closed period is at most a year
COALITION = "coalition"  # the funder of coalition-wide campaigns


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open UTC interval ``[start, end)`` of whole seconds (its id has seconds); an
    operation belongs to it by ``recorded_at`` (docs/settlement.md, "Periods and late
    operations"). Bounds: 2000-01-01 to 2100-01-01, at most five years long."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None:
                raise InvalidInput(f"{name} needs a time zone offset", field=name)
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        for name, value in (("start", self.start), ("end", self.end)):
            if value.microsecond:
                raise InvalidInput(f"{name} must be a whole second (periods are named to the "
                                   "second)", field=name)
            if not EARLIEST <= value <= LATEST:
                raise InvalidInput(f"{name} {value.isoformat()} is outside "
                                   f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}", field=name)
        if self.start >= self.end:
            raise InvalidInput("start must be before end", field="end")
        if self.end - self.start > MAX_REPORT:
            raise InvalidInput("a period is at most five years long", field="end")

    @classmethod
    def stored(cls, start: datetime, end: datetime) -> Period:
        """A period read back from ``settlement_periods``, as it was closed: not validated
        again, so one closed before the bounds existed (year 1) cannot break every report."""
        period = object.__new__(cls)
        object.__setattr__(period, "start", start.astimezone(UTC))
        object.__setattr__(period, "end", end.astimezone(UTC))
        return period

    def check_closable(self) -> None:
        """A closed period is at most a year long (``INVALID_INPUT`` naming ``end``)."""
        if self.end - self.start > MAX_CLOSE:
            raise InvalidInput("a period to close is at most 366 days long", field="end")

    @property
    def id(self) -> str:
        return f"{self.start:%Y%m%dT%H%M%SZ}-{self.end:%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True, slots=True)
class Figures:
    """One partner's flows: in the period proper, or in one adjustment for a closed period.

    ``donations_*`` is the part of ``redeemed_*`` net of refunds received by a charity (a memo,
    not counted twice in ``net_minor``). ``promotion_*``: bonus points the partner's own
    campaigns funded (issue 12), at the price of the rule version each earn was rated with; the
    partner pays them to the coalition like issued points (CEIL), reversals are credited (FLOOR).
    """

    issued_points: int = 0
    issued_minor: int = 0  # the partner pays (CEIL)
    issue_returns_points: int = 0
    issue_returns_minor: int = 0  # credited back to the partner (FLOOR)
    redeemed_points: int = 0
    redeemed_minor: int = 0  # the partner is paid (FLOOR)
    redeem_refunds_points: int = 0
    redeem_refunds_minor: int = 0  # charged back to the partner (CEIL)
    donations_points: int = 0
    donations_minor: int = 0
    fee_minor: int = 0  # the partner pays the coalition (CEIL, signed)
    promotion_points: int = 0  # bonus points its campaigns funded
    promotion_minor: int = 0  # the partner (as funder) pays (CEIL)
    promotion_returns_points: int = 0  # of them, reversed by returns
    promotion_returns_minor: int = 0  # credited back to the funder (FLOOR)

    # Added with issue 12: left out of the canonical form while zero, so a period without
    # promotions hashes as it did before they existed (closed snapshots still verify).
    LATER: ClassVar[frozenset[str]] = frozenset({
        "promotion_points", "promotion_minor", "promotion_returns_points",
        "promotion_returns_minor"})

    @property
    def net_minor(self) -> int:
        return (self.redeemed_minor - self.redeem_refunds_minor - self.fee_minor
                - self.issued_minor + self.issue_returns_minor
                - self.promotion_minor + self.promotion_returns_minor)

    @property
    def promotion_net_points(self) -> int:
        return self.promotion_points - self.promotion_returns_points

    @property
    def promotion_net_minor(self) -> int:
        """What the partner pays for the bonus points it funded, net of reversals."""
        return self.promotion_minor - self.promotion_returns_minor

    def plus(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                          for f in dataclasses.fields(self)})


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Operations recorded in this period that occurred in a period closed before they came."""

    period_id: str
    period_start: datetime
    period_end: datetime
    figures: Figures


@dataclass(frozen=True, slots=True)
class PartnerLine:
    partner_id: str
    name: str
    kind: str
    figures: Figures
    adjustments: tuple[Adjustment, ...]

    @property
    def adjustments_minor(self) -> int:
        return sum(a.figures.net_minor for a in self.adjustments)

    @property
    def net_minor(self) -> int:
        return self.figures.net_minor + self.adjustments_minor

    @property
    def all_figures(self) -> Figures:
        """The period proper plus every adjustment."""
        total = self.figures
        for a in self.adjustments:
            total = total.plus(a.figures)
        return total


@dataclass(frozen=True, slots=True)
class CoalitionLine:
    """The coalition's own position. ``net_minor`` is computed from the flows, independently of
    the partner lines; ``margin_minor`` is the derived member of its breakdown (see docs).

    Promotions (issue 12): ``promotion_income_minor`` is what partner funders pay for their
    campaigns' bonus points, net of reversals (in ``net_minor``); ``bonus_*`` are the points the
    coalition's own campaigns funded and their cost at the earns' prices, a memo (no money moves
    between parties for them: the coalition pays their redemptions, which ``redemption_cost``
    already holds, and their outstanding part is in ``liability_change``)."""

    issue_income_minor: int  # partners pay for points issued, net of returns
    redemption_cost_minor: int  # partners are paid for points redeemed, net of refunds
    fees_minor: int
    net_minor: int
    breakage_points: int
    breakage_minor: int
    bonus_points: int
    liability_change_points: int
    liability_change_minor: int
    margin_minor: int
    promotion_income_minor: int = 0
    bonus_returns_points: int = 0
    bonus_minor: int = 0  # CEIL, as a partner funder would pay
    bonus_returns_minor: int = 0  # FLOOR

    LATER: ClassVar[frozenset[str]] = frozenset({
        "promotion_income_minor", "bonus_returns_points", "bonus_minor", "bonus_returns_minor"})

    @property
    def bonus_cost_minor(self) -> int:
        """The coalition's own cost of its campaigns' bonus points, net of reversals."""
        return self.bonus_minor - self.bonus_returns_minor


@dataclass(frozen=True, slots=True)
class FunderLine:
    """One funder's promotions in a report (derived from the partner lines and the coalition's
    line, never stored twice): bonus points its campaigns issued, those reversed, and their cost
    net of reversals. ``pays``: a partner funder pays it to the coalition; the coalition's is
    its own cost."""

    funder: str  # a partner id, or "coalition"
    points: int
    returned_points: int
    minor: int
    returned_minor: int

    @property
    def net_points(self) -> int:
        return self.points - self.returned_points

    @property
    def net_minor(self) -> int:
        return self.minor - self.returned_minor

    @property
    def pays(self) -> bool:
        return self.funder != COALITION


@dataclass(frozen=True, slots=True)
class MatrixCell:
    """Points earned at ``origin`` and redeemed (net of refunds) at ``redeemer``, and what the
    redeemer is paid for them (FLOOR on redemptions, CEIL on refunds, per cell)."""

    origin: str
    redeemer: str
    points: int
    minor: int


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    currency: str
    partners: tuple[PartnerLine, ...]
    coalition: CoalitionLine
    matrix: tuple[MatrixCell, ...]

    def line(self, partner_id: str) -> PartnerLine | None:
        return next((p for p in self.partners if p.partner_id == partner_id), None)

    def funders(self) -> tuple[FunderLine, ...]:
        """The promotion lines: each partner that funded bonus points, then the coalition."""
        lines = []
        for p in self.partners:
            f = p.all_figures
            if f.promotion_points or f.promotion_returns_points:
                lines.append(FunderLine(p.partner_id, f.promotion_points,
                                        f.promotion_returns_points, f.promotion_minor,
                                        f.promotion_returns_minor))
        c = self.coalition
        if c.bonus_points or c.bonus_returns_points:
            lines.append(FunderLine(COALITION, c.bonus_points, c.bonus_returns_points,
                                    c.bonus_minor, c.bonus_returns_minor))
        return tuple(lines)

    def canonical(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @classmethod
    def from_canonical(cls, body: str) -> Report:
        """The report a stored snapshot holds (``canonical_json`` read back; the derived totals
        in it are recomputed, not read). ``from_canonical(b).canonical_json() == b``."""
        data = json.loads(body)

        def figures(d: dict[str, Any]) -> Figures:
            return Figures(**{f.name: int(d[f.name]) for f in dataclasses.fields(Figures)
                              if f.name in d or f.name not in Figures.LATER})

        def stamp(text: str) -> datetime:
            return datetime.fromisoformat(text)

        period = Period.stored(stamp(data["period"]["start"]), stamp(data["period"]["end"]))
        lines = tuple(
            PartnerLine(p["partner_id"], p["name"], p["kind"], figures(p["figures"]), tuple(
                Adjustment(a["period_id"], stamp(a["period_start"]), stamp(a["period_end"]),
                           figures(a["figures"])) for a in p["adjustments"]))
            for p in data["partners"])
        coalition = CoalitionLine(**{f.name: int(data["coalition"][f.name])
                                     for f in dataclasses.fields(CoalitionLine)
                                     if f.name in data["coalition"]
                                     or f.name not in CoalitionLine.LATER})
        matrix = tuple(MatrixCell(m["origin"], m["redeemer"], int(m["points"]), int(m["minor"]))
                       for m in data["matrix"])
        return cls(period, str(data["currency"]), lines, coalition, matrix)


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    id: str
    period: Period
    closed_at: datetime
    closed_by: str
    sha256: str


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, with derived totals (``net_minor``…) written out as well."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        later: frozenset[str] = getattr(type(value), "LATER", frozenset())
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
               if not (f.name in later and getattr(value, f.name) == 0)}
        for derived in ("net_minor", "adjustments_minor", "id"):
            if hasattr(type(value), derived) and isinstance(
                    getattr(type(value), derived), property):
                out[derived] = _plain(getattr(value, derived))
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
