"""Funders' exposure as finance reads it: the funding counters in points, valued in money.

The counters (``gateway.promotions.funding``) are points; a point's price is the funder's rule
version in force now (``price_per_point_issued_minor``, what the partner pays per point it
issues), and a partner funder owes CEIL of its exposure at that price (pricing's rule: a
partner pays CEIL). The coalition has no price of its own (its bonus points are priced at each
earning partner's rule in settlement), so its money columns are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import TypeVar

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput, NotFound
from gateway.core.principal import Principal
from gateway.db.retry import retrying
from gateway.db.uow import UnitOfWork
from gateway.ledger.context import RuleSource
from gateway.promotions import funding
from gateway.promotions.funding import Funding, FundingMode, FundingPolicy
from gateway.settlement import pricing


@dataclass(frozen=True, slots=True)
class FunderExposure:
    funding: Funding
    price_per_point_minor: Fraction | None  # None: the coalition
    net_issued_minor: int | None
    exposure_minor: int | None
    left_minor: int | None  # FLOOR: what the headroom is worth at most


def funder_exposure(engine: Engine, rules: RuleSource, currency: str, at: datetime,
                    principal: Principal | None = None) -> list[FunderExposure]:
    """Every funder with a funding account; a partner-bound principal sees its own only."""
    own = None if principal is None else principal.partner_id
    with UnitOfWork(engine, write=False) as uow:
        rows = funding.all_funders(uow.conn)
    return [_valued(rules, currency, at, f) for f in rows if own in (None, f.funder)]


def one_funder(engine: Engine, rules: RuleSource, currency: str, at: datetime,
               funder: str) -> FunderExposure:
    with UnitOfWork(engine, write=False) as uow:
        found = funding.read(uow.conn, funder)
    if found is None:
        raise NotFound(f"funder {funder!r} has no funding account", field="funder")
    return _valued(rules, currency, at, found)


def _valued(rules: RuleSource, currency: str, at: datetime, f: Funding) -> FunderExposure:
    if f.funder == funding.COALITION:
        return FunderExposure(f, None, None, None, None)
    price = pricing.prices_at(rules, f.funder, at, currency).price_per_point_issued_minor
    return FunderExposure(f, price, pricing.pay(f.net_issued_points, price),
                          pricing.pay(f.exposure_points, price),
                          pricing.paid(f.left_points, price))


# --- finance's commands (CLI; one write transaction each) -----------------------------------------
def set_terms(engine: Engine, clock: Clock, funder: str, *, mode: str | None,
              policy: str | None, limit_points: int | None, actor: str) -> Funding:
    """Open a funder's funding account or change its terms (``gateway funding set``)."""
    mode_v = _enum(FundingMode, mode, "mode")
    policy_v = _enum(FundingPolicy, policy, "policy")

    def run() -> Funding:
        with UnitOfWork(engine, write=True) as uow:
            found = funding.configure(uow.conn, funder, mode=mode_v, policy=policy_v,
                                      limit_points=limit_points, at=clock.now(), actor=actor)
            uow.commit()
            return found
    return retrying(run)


def top_up(engine: Engine, clock: Clock, funder: str, points: int, *, actor: str,
           note: str | None = None) -> Funding:
    """Record money received as points of headroom (``gateway funding topup``)."""
    def run() -> Funding:
        with UnitOfWork(engine, write=True) as uow:
            found = funding.top_up(uow.conn, funder, points, clock.now(), actor, note)
            uow.commit()
            return found
    return retrying(run)


E = TypeVar("E", FundingMode, FundingPolicy)


def _enum(kind: type[E], value: str | None, field: str) -> E | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{field} is one of {', '.join(k.value for k in kind)}; "
                           f"got {value!r}", field=field) from None
