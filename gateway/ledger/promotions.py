"""Campaigns in the earn's own transaction: the load step of load -> plan -> apply (decision 020).

``campaign_candidates`` needs no I/O (the compiled set is cached by the context's
``campaigns``); with no candidate an earn reads and writes nothing more. Otherwise
:func:`load_promotions` reads only what the candidates need (the member's purchases at this
partner, their birth month, the counters of budgeted campaigns locked in campaign id order
after the member, the member's own usage per window), evaluates them and charges each
funder for its points (:func:`fund`: funders locked after the counters; a ``refuse`` funder
without room cuts or skips its awards, decision 027); the planner (``planners.earn``) turns
the awards into moves from their funders' accounts, and apply appends the
``promotion_awards`` rows and the counter updates. A return releases the funders
(:func:`release_awards`). At redeem, :func:`load_redeem_promotions` finds a
``PointsDiscount``'s better point value from the same member facts.

Where the other mechanics' facts enter (issue 12): ``_facts`` builds ``MemberFacts``; the
tier, segments, referral and coupons are filled there by their modules. Coupons and referrals
(decision 025) add theirs in :func:`mechanics_facts`, and are *claimed* by the earn:
:func:`claim_mechanics`, after evaluation and before apply, takes one use of each coupon whose
campaign applied and marks the referral rewarded, in the earn's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fractions import Fraction

from sqlalchemy import bindparam, func, select

from gateway.core.errors import FundingLimitReached
from gateway.core.money import Money
from gateway.db.tables import members, operations
from gateway.ledger.chart import AccountKind
from gateway.ledger.model import (
    AppliedPromotion,
    ReversedPromotion,
    SkippedPromotion,
    TillRewardGiven,
)
from gateway.ledger.planners.state import MemberState
from gateway.ledger.repository import Account, LedgerRepository
from gateway.ledger.runner import Tx
from gateway.promotions import coupons, engine, funding, referrals, repository, segments, tiers
from gateway.promotions.coupons import NOTHING_PRESENTED, Presented
from gateway.promotions.engine import CompiledCampaign
from gateway.promotions.model import (
    COALITION,
    Award,
    Campaign,
    Evaluation,
    MemberFacts,
    NthPurchase,
    PointsDiscount,
    PurchaseContext,
    ReferralReward,
    TillReward,
    Used,
)
from partners.config import RuleVersion
from partners.rules import CheckedPurchase, LineItem, _num


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
                    coupon_codes: tuple[str, ...] = (),
                    programme: tiers.TierProgramme | None = None) -> Promotions:
    """Read what ``candidates`` need (with the member locked already) and evaluate them. What
    that is was worked out when the campaigns were compiled (``engine.needs``). Coupon codes
    presented are always checked (each gets its line in the explanation), campaigns or not."""
    if not candidates and not coupon_codes:
        return NO_PROMOTIONS
    needs = engine.needs(candidates)
    facts = _facts(tx, needs, candidates, member_id, purchase, coupon_codes, programme)
    facts, presented = mechanics_facts(tx, facts, needs, purchase.partner_id, coupon_codes,
                                       purchase.occurred_at)
    locked = repository.lock_counters(tx.conn, list(needs.counters))
    limited = list(needs.member_windows)
    usage = repository.member_usage(tx.conn, member_id, limited, tx.now) if limited else {}
    # Only the campaigns with a counter or a member limit have use to report; the engine
    # treats a missing entry as nothing used (most campaigns, most earns: no object per one).
    used = {cid: Used(*locked.get(cid, (0, 0)), usage.get(cid, {}))
            for cid in {*locked, *usage}}
    evaluation = fund(tx, engine.evaluate(candidates, purchase, facts, used, rule),
                      lambda limits: engine.evaluate(candidates, purchase, facts, used, rule,
                                                     limits))
    others = {}
    for other in sorted({a.member_id for a in evaluation.awards} - {member_id}):
        # lock order: purchase, member, counters, funders, referrers
        tx.ledger.lock_member(other)
        others[other] = MemberState(other, *tx.ledger.member_accounts_and_balances(other))
    referral_campaigns = frozenset(
        k.campaign.id for k in candidates
        if any(isinstance(e, ReferralReward) for e in k.campaign.effects)
    ) if facts.referred_by is not None else frozenset()
    return Promotions(
        evaluation, funder_accounts(tx.ledger, (a.funder for a in evaluation.awards if a.points)),
        frozenset(needs.counters), others, presented, facts.referred_by, referral_campaigns)


def lock_releases(tx: Tx, budgeted: Iterable[str], funders: Iterable[str]) -> None:
    """A return's locks on what it gives back, taken together before it locks another member
    (a referrer): the counters in campaign id order, then the funders' rows in funder order,
    the earn's lock order (purchase, member, coupons, counters, funders, referrers). Locked
    one by one as each side's reversal applied, the referrer came before the counter of the
    campaign that rewarded it, while a referred member's first earn locks that counter, then
    the referrer: the two waited on each other (decision 020)."""
    repository.lock_counters(tx.conn, list(budgeted))
    for funder in sorted(set(funders)):
        funding.headroom_locked(tx.conn, funder)


def claim_mechanics(tx: Tx, promotions: Promotions, member_id: str,
                    operation_id: str) -> Promotions:
    """Before apply, in the earn's transaction: take one use of each presented coupon whose
    campaign applied (the others stay usable), and claim the member's referral if a
    ``ReferralReward`` campaign applied (once: a conditional UPDATE). The answer's explanation
    gets one line per presented code."""
    if not promotions.coupons.checks and promotions.referred_by is None and not promotions.notes:
        return promotions  # no code presented, no referral pending: nothing to claim
    applied_ids = {a.campaign_id for a in promotions.evaluation.awards}
    settled = promotions.coupons.settled(applied_ids)
    coupons.consume(tx.conn, settled, member_id, operation_id, tx.now)
    if promotions.referred_by is not None and applied_ids & promotions.referral_campaigns:
        referrals.mark_rewarded(tx.conn, member_id, operation_id, tx.now)
    return replace(promotions, coupons=settled, notes=settled.explanation)


_Funded = Award | AppliedPromotion | ReversedPromotion


def points_by_funder(awards: Iterable[_Funded]) -> dict[str, int]:
    """Each funder's points in these awards (funders giving 0 points left out)."""
    by_funder: dict[str, int] = {}
    for award in awards:
        if award.points:
            by_funder[award.funder] = by_funder.get(award.funder, 0) + award.points
    return by_funder


def fund(tx: Tx, evaluation: Evaluation,
         again: Callable[[Mapping[str, int]], Evaluation]) -> Evaluation:
    """Charge every funder for its points in the operation's own transaction, after the
    counters, in funder order (lock order: purchase, member, counters, funders; then
    referrers). A funder without terms, or with room, costs one UPDATE each and the
    evaluation stands. A ``refuse`` funder without room refuses: its headroom is read with its
    row locked and the campaigns are evaluated ``again`` with it as a limit, so its awards are
    cut to what is left or skipped (``FUNDER_LIMIT``) and the campaigns after them see the
    outcome (stacking); the charges are then brought to the new totals (docs/decisions/027).
    An ``alert`` funder is never refused (``funding.charge`` records the alert)."""
    limits: dict[str, int] = {}
    charged: dict[str, int] = {}
    while True:
        wanted = points_by_funder(evaluation.awards)
        try:
            for funder in sorted(set(wanted) | set(charged)):
                delta = wanted.get(funder, 0) - charged.get(funder, 0)
                if delta > 0:
                    funding.charge(tx.conn, funder, delta, tx.now)
                elif delta < 0:
                    funding.uncharge(tx.conn, funder, -delta)
                charged[funder] = wanted.get(funder, 0)
            return evaluation
        except FundingLimitReached as refused:
            # Each pass limits one more funder to exactly what it has, under its lock, so the
            # next pass charges it within that: at most one pass per funder. A second refusal
            # by the same funder would mean the engine ignored the limit: raise, never loop.
            if refused.funder in limits:
                raise
            left = funding.headroom_locked(tx.conn, refused.funder) or 0
            limits[refused.funder] = charged.get(refused.funder, 0) + max(0, left)
            evaluation = again(limits)


def release_awards(tx: Tx, reversed_awards: Iterable[_Funded]) -> None:
    """A return's funders get back the points it took back from their awards (in funder
    order, the lock order), in the return's transaction."""
    funding.release_all(tx.conn, points_by_funder(reversed_awards), tx.now)


@dataclass(frozen=True, slots=True)
class RedeemPromotion:
    """A better point value for a redemption, and the campaign that gives it."""

    point_value_minor: Fraction
    promotion: AppliedPromotion

    def rule(self, rule: RuleVersion) -> RuleVersion:
        """``rule`` with its burn paying this value a point: the basket share and minimum
        points are the rule's own, so the most points a basket takes follows the new value."""
        assert rule.burn is not None
        return replace(rule, burn=replace(rule.burn, point_value_minor=self.point_value_minor))


def load_redeem_promotions(tx: Tx, candidates: Sequence[CompiledCampaign], member_id: str,
                           purchase: PurchaseContext, rule: RuleVersion,
                           coupon_codes: tuple[str, ...] = (),
                           programme: tiers.TierProgramme | None = None
                           ) -> tuple[RedeemPromotion | None, Presented]:
    """The redemption's campaigns (with the member locked): the best ``PointsDiscount`` whose
    conditions hold, when it pays more than the rule's own point value (a lower one never
    applies: a campaign only betters the rate). Reads the member facts those campaigns need,
    as an earn does, and checks the coupons presented (``mechanics_facts``: their rows locked,
    lock order purchase, member, coupons). Budgets, limits and funding do not apply: a discount
    issues no points (docs/decisions/027). Returns the discount, if any, and the coupons
    settled against it: the caller takes a use of each REDEEMED one in its transaction."""
    discounts = [k for k in candidates
                 if any(isinstance(e, PointsDiscount) for e in k.campaign.effects)]
    if rule.burn is None or (not discounts and not coupon_codes):
        return None, NOTHING_PRESENTED
    needs = engine.needs(discounts)
    facts = _facts(tx, needs, discounts, member_id, purchase, coupon_codes, programme)
    facts, presented = mechanics_facts(tx, facts, needs, purchase.partner_id, coupon_codes,
                                       purchase.occurred_at)
    found = engine.points_discount(discounts, purchase, facts) if discounts else None
    if found is None or found[0] <= rule.burn.point_value_minor:
        return None, presented.settled(())
    value, award = found
    return RedeemPromotion(value, applied((award,))[0]), presented.settled({award.campaign_id})


def purchase_context(partner_id: str, channel: str, occurred_at: datetime,
                     checked: CheckedPurchase, base_points: int) -> PurchaseContext:
    facts = checked.facts
    lines = checked.lines or (LineItem(facts.amount_minor),)
    return PurchaseContext(partner_id, channel, occurred_at, facts.amount_minor,
                           facts.currency, lines, base_points)


def redeem_context(partner_id: str, channel: str, at: datetime, basket: Money) -> PurchaseContext:
    """The basket a redemption pays, as the engine sees a purchase: one line, no points."""
    return PurchaseContext(partner_id, channel, at, basket.amount_minor, basket.currency,
                           (LineItem(basket.amount_minor),), 0)


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


def _facts(tx: Tx, needs: engine.Needs, candidates: Sequence[CompiledCampaign],
           member_id: str, purchase: PurchaseContext, coupon_codes: tuple[str, ...],
           programme: tiers.TierProgramme | None = None) -> MemberFacts:
    partner_id = purchase.partner_id
    purchases = 0
    if needs.purchases_at_partner:
        # NthPurchase(n) holds when exactly n - 1 earns came before: counting up to the
        # largest n decides every candidate, however many earns the member has here.
        purchases = int(tx.conn.execute(_PURCHASES_AT_PARTNER, {
            "member_id": member_id, "partner_id": partner_id,
            "n": largest_nth(candidates)}).scalar_one())
    birth_month = None
    if needs.birth_month:
        born = tx.conn.execute(_BIRTH_DATE, {"member_id": member_id}).scalar_one_or_none()
        birth_month = born.month if born is not None else None
    # Issue 12's other mechanics enter here, each only when a candidate needs it:
    # tier (needs.tier), segments (needs.segments), referred_by (needs.referral), and coupons
    # (needs.coupons: the coupon module checks ``coupon_codes`` and redeems them).
    del coupon_codes
    # The tier at the purchase's time, before this earn's own points (decision 026): at most
    # window_months rows of tier_progress' primary key.
    tier = None
    if needs.tier and programme is not None:
        tier = tiers.tier_at(tx.conn, programme, member_id, purchase.occurred_at).id
    # The member's segments, none unless their latest purchase_history choice is consent.
    member_segments = (segments.member_segments_of(tx.conn, member_id) if needs.segments
                       else frozenset())
    return MemberFacts(member_id, tier=tier, segments=member_segments, birth_month=birth_month,
                       purchases_at_partner=purchases)


def largest_nth(candidates: Iterable[CompiledCampaign]) -> int:
    """The largest ``NthPurchase.n`` among the candidates (1 when none has one)."""
    return max((k.n for c in candidates for k in c.campaign.audience + c.campaign.conditions
                if isinstance(k, NthPurchase)), default=1)


# The answer's items made lately, by what they hold: most awards are the same from earn to
# earn (a fixed bonus: same campaign, points and line), so one immutable item serves them all
# (and its JSON is memoised by ``model.to_json``). Cleared when full: bounded.
_APPLIED: dict[tuple[str, int, str, int, str, TillReward | None], AppliedPromotion] = {}
_APPLIED_MAX = 2048


def applied(awards: Iterable[Award]) -> tuple[AppliedPromotion, ...]:
    """The awards as an earn answers them (and stores them for replays and returns)."""
    made = []
    for a in awards:
        key = (a.campaign_id, a.version, a.funder, a.points, a.explanation, a.till_reward)
        item = _APPLIED.get(key)
        if item is None:
            if len(_APPLIED) >= _APPLIED_MAX:
                _APPLIED.clear()
            item = _APPLIED[key] = AppliedPromotion(
                a.campaign_id, a.version, a.funder, a.points, a.explanation,
                None if a.till_reward is None else _till(a.till_reward))
        made.append(item)
    return tuple(made)


def _till(t: TillReward) -> TillRewardGiven:
    return TillRewardGiven(str(t.kind), t.code, t.description, t.value_minor,
                           None if t.percent is None else _num(t.percent))


def skipped(evaluation: Evaluation) -> tuple[SkippedPromotion, ...]:
    return tuple(SkippedPromotion(s.campaign_id, s.version, str(s.reason), s.explanation)
                 for s in evaluation.skips)


# Earns before this one at the partner, counted up to :n (ix_operations_daily_cap: member,
# partner, kind, ...): bounded by the campaigns' largest NthPurchase, not by the member's history.
_PURCHASES_AT_PARTNER = select(func.count()).select_from(
    select(operations.c.id).where(
        operations.c.member_id == bindparam("member_id"),
        operations.c.partner_id == bindparam("partner_id"),
        operations.c.kind == "earn").limit(bindparam("n")).subquery())
_BIRTH_DATE = select(members.c.birth_date).where(members.c.id == bindparam("member_id"))
