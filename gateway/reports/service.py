"""Who may read which report, and the reports read for them (decision 034).

* A campaign's (an item's) effectiveness: the item's owner (a partner-bound token sees its own
  items only; another partner's looks exactly like a missing one) or a coalition-wide reader.
* The programme report: coalition-wide readers only (finance without a partner binding, or the
  CLI); a partner-bound caller is refused (``Forbidden``): the programme's figures are the
  coalition's books, not a partner's.

The transport checks the scope (``reports:read`` for effectiveness, ``settlement:read`` for the
programme report); this module checks the partner binding, so the CLI, GraphQL and the HTML
page share one rule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Engine

from gateway.core.errors import Forbidden, NotFound
from gateway.ledger.context import RuleSource
from gateway.reports import effectiveness, programme
from gateway.reports.effectiveness import Effectiveness
from gateway.reports.items import (
    CampaignSource,
    ChallengeSource,
    DrawSource,
    ItemSource,
    visible,
)
from gateway.reports.programme import ProgrammeReport, Progress
from gateway.settlement.model import Period

SOURCES: Mapping[str, ItemSource] = {"campaign": CampaignSource(), "challenge": ChallengeSource(),
                                      "draw": DrawSource()}
PROGRAMME_SCOPE = "settlement:read"
MAX_ITEMS = 100  # one listing's items, like a page


def item_effectiveness(engine: Engine, rules: RuleSource, currency: str, now: datetime,
                       partner_id: str | None, item_id: str,
                       kind: str = "campaign", field: str | None = None) -> Effectiveness:
    source = SOURCES[kind]
    with engine.connect() as conn:
        item = source.item(conn, item_id)
        if item is None or not visible(item, partner_id):
            raise NotFound(f"no {kind} of yours has this id", field=field or f"{kind}Id")
        return effectiveness.read(conn, source, item, rules, currency, _through(now))


def all_effectiveness(engine: Engine, rules: RuleSource, currency: str, now: datetime,
                      partner_id: str | None, kind: str = "campaign") -> list[Effectiveness]:
    """Every item the caller sees (a partner: its own), by id, at most ``MAX_ITEMS``."""
    source = SOURCES[kind]
    with engine.connect() as conn:
        items = [i for i in source.items(conn, partner_id) if visible(i, partner_id)]
        return [effectiveness.read(conn, source, i, rules, currency, _through(now))
                for i in items[:MAX_ITEMS]]


def _through(now: datetime) -> datetime:
    """An open window's end: everything recorded up to and including ``now``."""
    return now + timedelta(microseconds=1)


def programme_report(engine: Engine, period: Period, partner_id: str | None,
                     progress: Progress | None = None) -> ProgrammeReport:
    if partner_id is not None:
        raise Forbidden(PROGRAMME_SCOPE, "the programme report is the coalition's: a "
                        "partner-bound token cannot read it")
    return programme.programme_report(engine, period, progress or (lambda _: None))
