"""The welcome bonus: campaigns triggered by enrolment (``Trigger.ENROLMENT``) at the enrolling
partner (its own, or coalition-wide ones that name it), posted in the enrolment's own
transaction as one operation of kind ``bonus`` (decision 020).

Idempotent with the enrolment: only the transaction that creates the member posts it (a retried
enrolment finds the membership and posts nothing). An enrolment has no basket and no channel:
a campaign restricted to channels, or with a purchase condition such as a minimum spend, does
not apply at enrolment (welcome on the first purchase is ``NthPurchase(1)`` on a purchase
campaign). No campaign, or no earn rule in force at the partner: nothing is read or posted."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.core.errors import DomainError
from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext
from gateway.ledger.model import BonusPosted, OperationRecord
from gateway.ledger.planners.state import MemberState, Move, NewLot, Plan, Posting
from gateway.ledger.promotions import Promotions, applied, load_promotions
from gateway.ledger.runner import Tx, operation_id
from gateway.promotions.model import PurchaseContext, Trigger
from gateway.promotions.repository import AwardRow
from partners.rules import LineItem

ENROLMENT_CHANNEL = ""  # an enrolment has no sales channel


WelcomeBonus = BonusPosted  # the ``bonus`` operation's answer (stored with it)


def post_welcome(tx: Tx, ctx: LedgerContext, partner_id: str, member_id: str
                 ) -> WelcomeBonus | None:
    """Inside the enrolment's transaction, after the member's accounts exist."""
    candidates = ctx.campaigns.candidates(partner_id, ENROLMENT_CHANNEL, tx.now,
                                          Trigger.ENROLMENT)
    if not candidates:
        return None
    try:
        rule = ctx.rules.rule_at(partner_id, tx.now)
        currency = ctx.rules.partner(partner_id).currency
    except DomainError:  # no rule in force here: no points to give
        return None
    purchase = PurchaseContext(partner_id, ENROLMENT_CHANNEL, tx.now, 0, currency,
                               (LineItem(0),), 0)
    promotions = load_promotions(tx, candidates, member_id, purchase, rule, programme=ctx.tiers)
    expiry_days = rule.earn.expiry_days if rule.earn else 365
    state = MemberState(member_id, *tx.ledger.member_accounts_and_balances(member_id))
    plan = plan_welcome(state, partner_id, promotions, expiry_days, tx.now, operation_id())
    if plan is None:
        return None
    apply(tx, plan.postings)
    return plan.result


def plan_welcome(state: MemberState, partner_id: str, promotions: Promotions,
                 expiry_days: int, now: datetime, op_id: str) -> Plan[WelcomeBonus] | None:
    """The awards as one ``bonus`` operation: a move per funder into the wallet, one lot
    (origin: the enrolling partner), the promotion_awards rows and budgeted counters."""
    awards = [a for a in promotions.evaluation.awards if a.member_id == state.member_id]
    if not awards:
        return None
    total = sum(a.points for a in awards)
    result = WelcomeBonus(op_id, total, applied(awards), now)
    record = OperationRecord(id=op_id, partner_id=partner_id, member_id=state.member_id,
                             kind="bonus", points=total, result=result)
    by_funder: dict[str, int] = {}
    for award in awards:
        if award.points:
            by_funder[award.funder] = by_funder.get(award.funder, 0) + award.points
    wallet = state.account(AccountKind.WALLET)
    moves = tuple(Move(promotions.funders[f], wallet, p) for f, p in sorted(by_funder.items()))
    lots = (NewLot(partner_id, total, now, now + timedelta(days=expiry_days), now),) if total \
        else ()
    rows = tuple(AwardRow(a.campaign_id, a.version, a.funder, a.member_id, a.points, 1,
                          a.till_reward.code if a.till_reward else None) for a in awards)
    counters = tuple((a.campaign_id, a.points, 1) for a in awards
                     if a.campaign_id in promotions.budgeted)
    return Plan(result, (Posting(record, moves, new_lots=lots, awards=rows,
                                 counters=counters),))
