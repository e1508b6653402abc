"""Campaigns in the earn's own transaction: the load step of load -> plan -> apply (decision 020).

``campaign_candidates`` needs no I/O (the compiled set is cached by the context's
``campaigns``); with no candidate an earn reads and writes nothing more. Otherwise
:func:`load_promotions` reads only what the candidates need (the member's purchases at this
partner, their birth month, the counters of budgeted campaigns locked in campaign id order
after the member, the member's own usage per window) and evaluates them; the planner
(``planners.earn``) turns the awards into moves from their funders' accounts, and apply
appends the ``promotion_awards`` rows and the counter updates.

Where the other mechanics' facts enter (issue 12): ``_facts`` builds ``MemberFacts``; the
tier, segments, referral and coupons are filled there by their modules. Coupons and referrals
(decision 025) add theirs in :func:`mechanics_facts`, and are *claimed* by the earn:
:func:`claim_mechanics`, after evaluation and before apply, takes one use of each coupon whose
campaign applied and marks the referral rewarded, in the earn's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, func, select

from gateway.db.tables import members, operations, promotion_awards
from gateway.ledger.chart import AccountKind
from gateway.ledger.model import AppliedPromotion, SkippedPromotion, TillRewardGiven
from gateway.ledger.planners.state import MemberState
from gateway.ledger.repository import Account, LedgerRepository
from gateway.ledger.runner import Tx
from gateway.promotions import coupons, engine, referrals, repository
from gateway.promotions.coupons import NOTHING_PRESENTED, Presented
from gateway.promotions.engine import CompiledCampaign
from gateway.promotions.model import (
    COALITION,
    Award,
    Campaign,
    Evaluation,
    MemberFacts,
    PurchaseContext,
    ReferralReward,
    Used,
)
from partners.config import RuleVersion
from partners.rules import CheckedPurchase, LineItem


@dataclass(frozen=True, slots=True)
class Promotions:
    """An evaluation, with what posting it needs: each funder's account and the campaigns
    whose counters the operation moves (the budgeted ones)."""

    evaluation: Evaluation
    funders: Mapping[str, Account] = field(default_factory=dict)
    budgeted: frozenset[str] = frozenset()
    # Members other than the purchaser an award goes to (a referral's referrer), locked after
    # the purchaser in id order, with their accounts and balances.
    others: Mapping[str, MemberState] = field(default_factory=dict)
    # Coupons and referrals (decision 025): each presented code's outcome, the referrer while
    # the referral is unrewarded, the candidates with a ReferralReward, and the explanation
    # lines the earn adds (one per presented code).
    coupons: Presented = NOTHING_PRESENTED
    referred_by: str | None = None
    referral_campaigns: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()


NO_PROMOTIONS = Promotions(Evaluation())


def budgeted(campaign: Campaign) -> bool:
    """Whether a campaign has a total budget (points or rewards): only those keep their
    counter current, so an unbudgeted campaign adds no hot row to every earn it rewards (the
    compiled ``CompiledCampaign.counted`` is this, worked out once for the campaigns in force;
    a return asks it of the stored versions its earn applied)."""
    return campaign.limits.budget_points is not None or campaign.limits.max_rewards is not None


def funder_account(ledger: LedgerRepository, funder: str) -> Account:
    """Where a funder's bonus points come from (``gateway.ledger.chart``)."""
    if funder == COALITION:
        return ledger.coalition_account(AccountKind.BONUS)
    return ledger.partner_account(funder, AccountKind.PROMOTIONS)


def funder_accounts(ledger: LedgerRepository, funders: Iterable[str]) -> dict[str, Account]:
    return {f: funder_account(ledger, f) for f in sorted(set(funders))}


def budgeted_of(tx: Tx, awards: Sequence[AppliedPromotion]) -> frozenset[str]:
    """Which of a past earn's applied campaigns keep counters (the versions it applied); a
    return releases only those. No read for an earn without campaigns."""
    if not awards:
        return frozenset()
    applied_versions = repository.versions(tx.conn, [(a.campaign_id, a.version) for a in awards])
    return frozenset(cid for (cid, _), c in applied_versions.items() if budgeted(c))


def load_promotions(tx: Tx, candidates: Sequence[CompiledCampaign], member_id: str,
                    purchase: PurchaseContext, rule: RuleVersion,
                    coupon_codes: tuple[str, ...] = ()) -> Promotions:
    """Read what ``candidates`` need (with the member locked already) and evaluate them. What
    that is was worked out when the campaigns were compiled (``engine.needs``). Coupon codes
    presented are always checked (each gets its line in the explanation), campaigns or not."""
    if not candidates and not coupon_codes:
        return NO_PROMOTIONS
    needs = engine.needs(candidates)
    facts = _facts(tx, needs, member_id, purchase.partner_id, coupon_codes)
    facts, presented = mechanics_facts(tx, facts, needs, purchase.partner_id, coupon_codes,
                                       purchase.occurred_at)
    locked = repository.lock_counters(tx.conn, list(needs.counters))
    limited = list(needs.member_windows)
    usage = repository.member_usage(tx.conn, member_id, limited, tx.now) if limited else {}
    used = {k.campaign.id: Used(*locked.get(k.campaign.id, (0, 0)), usage.get(k.campaign.id, {}))
            for k in candidates}
    evaluation = engine.evaluate(candidates, purchase, facts, used, rule)
    others = {}
    for other in sorted({a.member_id for a in evaluation.awards} - {member_id}):
        tx.ledger.lock_member(other)  # lock order: purchase, member, counters, referrers
        others[other] = MemberState(other, *tx.ledger.member_accounts_and_balances(other))
    referral_campaigns = frozenset(
        k.campaign.id for k in candidates
        if any(isinstance(e, ReferralReward) for e in k.campaign.effects)
    ) if facts.referred_by is not None else frozenset()
    return Promotions(
        evaluation, funder_accounts(tx.ledger, (a.funder for a in evaluation.awards if a.points)),
        frozenset(needs.counters), others, presented, facts.referred_by, referral_campaigns)


def claim_mechanics(tx: Tx, promotions: Promotions, member_id: str,
                    operation_id: str) -> Promotions:
    """Before apply, in the earn's transaction: take one use of each presented coupon whose
    campaign applied (the others stay usable), and claim the member's referral if a
    ``ReferralReward`` campaign applied (once: a conditional UPDATE). The answer's explanation
    gets one line per presented code."""
    applied_ids = {a.campaign_id for a in promotions.evaluation.awards}
    settled = promotions.coupons.settled(applied_ids)
    coupons.consume(tx.conn, settled, member_id, operation_id, tx.now)
    if promotions.referred_by is not None and applied_ids & promotions.referral_campaigns:
        referrals.mark_rewarded(tx.conn, member_id, operation_id, tx.now)
    return replace(promotions, coupons=settled, notes=settled.explanation)


def purchase_context(partner_id: str, channel: str, occurred_at: datetime,
                     checked: CheckedPurchase, base_points: int) -> PurchaseContext:
    facts = checked.facts
    lines = checked.lines or (LineItem(facts.amount_minor),)
    return PurchaseContext(partner_id, channel, occurred_at, facts.amount_minor,
                           facts.currency, lines, base_points)


def mechanics_facts(tx: Tx, facts: MemberFacts, needs: engine.Needs, partner_id: str,
                    coupon_codes: tuple[str, ...], at: datetime
                    ) -> tuple[MemberFacts, Presented]:
    """Coupons and referrals' facts (decision 025), after ``_facts`` and before the counters
    (lock order: purchase, member, coupons, counters, referrers): the presented codes checked
    and their rows locked (``MemberFacts.coupons``: the campaigns with a valid one), and the
    referrer while the referral is unrewarded, when a candidate needs it. A redemption's
    ``PointsDiscount`` takes its coupons the same way."""
    presented = coupons.present(tx.conn, partner_id, facts.member_id, coupon_codes, at)
    referred_by = referrals.referrer_of(tx.conn, facts.member_id) if needs.referral else None
    if not presented.checks and referred_by is None:
        return facts, presented
    return replace(facts, coupons=presented.campaigns, referred_by=referred_by), presented


def _facts(tx: Tx, needs: engine.Needs, member_id: str, partner_id: str,
           coupon_codes: tuple[str, ...]) -> MemberFacts:
    purchases = 0
    if needs.purchases_at_partner:
        purchases = int(tx.conn.execute(_PURCHASES_AT_PARTNER, {
            "member_id": member_id, "partner_id": partner_id}).scalar_one())
    birth_month = None
    if needs.birth_month:
        born = tx.conn.execute(_BIRTH_DATE, {"member_id": member_id}).scalar_one_or_none()
        birth_month = born.month if born is not None else None
    # Issue 12's other mechanics enter here, each only when a candidate needs it:
    # tier (needs.tier), segments (needs.segments), referred_by (needs.referral), and coupons
    # (needs.coupons: the coupon module checks ``coupon_codes`` and redeems them).
    del coupon_codes
    return MemberFacts(member_id, birth_month=birth_month, purchases_at_partner=purchases)


def applied(awards: Iterable[Award]) -> tuple[AppliedPromotion, ...]:
    """The awards as an earn answers them (and stores them for replays and returns)."""
    return tuple(
        AppliedPromotion(a.campaign_id, a.version, a.funder, a.points, a.explanation,
                         None if a.till_reward is None else TillRewardGiven(
                             str(a.till_reward.kind), a.till_reward.code,
                             a.till_reward.description, a.till_reward.value_minor))
        for a in awards)


def skipped(evaluation: Evaluation) -> tuple[SkippedPromotion, ...]:
    return tuple(SkippedPromotion(s.campaign_id, s.version, str(s.reason), s.explanation)
                 for s in evaluation.skips)


def bonus_earned_between(tx: Tx, member_id: str, partner_id: str, start: datetime,
                         end: datetime) -> int:
    """The campaigns' points in the member's earns at the partner in ``[start, end)``: the
    partner's daily cap counts its own base points only, so this comes off ``earned_today``."""
    return int(tx.conn.execute(_BONUS_EARNED_BETWEEN, {
        "member_id": member_id, "partner_id": partner_id, "start": start, "end": end,
    }).scalar_one())


# Earns before this one at the partner (ix_operations_daily_cap: member, partner, kind, ...).
_PURCHASES_AT_PARTNER = select(func.count()).select_from(operations).where(
    operations.c.member_id == bindparam("member_id"),
    operations.c.partner_id == bindparam("partner_id"),
    operations.c.kind == "earn")
_BONUS_EARNED_BETWEEN = (
    select(func.coalesce(func.sum(promotion_awards.c.points), 0))
    .select_from(promotion_awards.join(
        operations, operations.c.id == promotion_awards.c.operation_id))
    .where(promotion_awards.c.member_id == bindparam("member_id"),
           promotion_awards.c.partner_id == bindparam("partner_id"),
           promotion_awards.c.points > 0, operations.c.kind == "earn",
           promotion_awards.c.recorded_at >= bindparam(
               "start", type_=promotion_awards.c.recorded_at.type),
           promotion_awards.c.recorded_at < bindparam(
               "end", type_=promotion_awards.c.recorded_at.type)))
_BIRTH_DATE = select(members.c.birth_date).where(members.c.id == bindparam("member_id"))
