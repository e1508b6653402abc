"""Earn, redeem and return: the ledger's commands (DESIGN §4).

Each command is validated whole before any I/O (``validate_*``, ``precedence``), then runs in
one write transaction (``runner.run_command``) as load -> plan -> apply: load the member's state
through the calling partner's own link, sweep what is due, plan with the rule version in force
(``planners``, pure), apply the postings (``apply``): balanced transfers, lot movements, one
operation carrying its answer for replays (docs/decisions/011)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from gateway.core.errors import (
    InvalidAmount,
    InvalidInput,
    NotFound,
    PurchaseAlreadyRecorded,
)
from gateway.core.money import Money
from gateway.ledger.apply import apply
from gateway.ledger.chart import AccountKind
from gateway.ledger.context import LedgerContext, check_key, require_currency
from gateway.ledger.housekeeping import sweep_due, sweep_member
from gateway.ledger.identify import Who, admit, who_named
from gateway.ledger.load import member_state, spendable_lots
from gateway.ledger.lot_repository import LotRepository
from gateway.ledger.model import (
    BonusPosted,
    Earned,
    EarnPoints,
    PreviewedEarn,
    Redeemed,
    RedeemPoints,
    ReferralReversed,
    Returned,
    ReturnPurchase,
    SpendCommand,
    from_json,
)
from gateway.ledger.planners import (
    EarnInput,
    MemberState,
    OpenLot,
    Posting,
    ReferralReturnInput,
    ReturnInput,
    SpendInput,
    plan_earn,
    plan_referral_return,
    plan_refund_expiry,
    plan_return,
    plan_spend,
)
from gateway.ledger.precedence import Checks, first_failure
from gateway.ledger.promotions import (
    NO_PROMOTIONS,
    RedeemPromotion,
    budgeted_of,
    claim_mechanics,
    funder_accounts,
    load_promotions,
    load_redeem_promotions,
    lock_releases,
    purchase_context,
    redeem_context,
)
from gateway.ledger.repository import Account, OperationRow
from gateway.ledger.runner import Tx, operation_id, run_command
from gateway.promotions import coupons, funding, referrals
from gateway.promotions.coupons import NOTHING_PRESENTED, Presented
from gateway.promotions.tiers import record_qualifying, record_returned
from partners.config import Channel, PartnerDefinition, PartnerPolicy, RuleVersion
from partners.rules import (
    CheckedPurchase,
    LineItem,
    PurchaseFacts,
    checked_purchase,
    quote_earn,
)

MAX_POINTS = 10**12
MAX_AMOUNT_MINOR = 10**13
FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class EarnRequest:
    """An earn that passed every check on the request alone."""

    partner: PartnerDefinition
    facts: CheckedPurchase
    occurred_at: datetime | None  # None: when it is recorded
    who: Who


def validate_earn(partner: PartnerDefinition, cmd: EarnPoints, now: datetime) -> EarnRequest:
    """Every check on the request alone, no I/O, in result-code order (``precedence``)."""
    checks = Checks()
    checks.run(lambda: check_key(cmd.idempotency_key))
    facts = checks.run(lambda: _facts(cmd, partner.policy))
    occurred_at = checks.run(lambda: _occurred_at(cmd.occurred_at, now, partner.policy))
    checks.run(lambda: require_currency(partner, cmd.amount, "amount"))
    who = checks.run(lambda: who_named(cmd.partner_id, cmd.customer_id, cmd.card_number,
                                       cmd.store_code, spend=False))
    checks.raise_first()
    assert facts is not None and who is not None
    return EarnRequest(partner, facts, None if cmd.occurred_at is None else occurred_at, who)


def earn_points(ctx: LedgerContext, cmd: EarnPoints) -> Earned:
    request = validate_earn(ctx.rules.partner(cmd.partner_id), cmd, ctx.clock.now())
    who = admit(ctx, request.who)

    def body(tx: Tx, fingerprint: str) -> Earned:
        member_id = who.member_in(tx, spend=False)
        occurred_at = request.occurred_at or tx.now
        rule = ctx.rules.rule_at(cmd.partner_id, occurred_at)
        # The reads go out together, in the lock order (purchase, then member), and are
        # answered together: one round trip on PostgreSQL (gateway.db.pgfast).
        tx.ledger.lock_purchase(cmd.partner_id, cmd.purchase_id)
        purchased = tx.ledger.purchase_operations_later(
            cmd.partner_id, cmd.purchase_id, ["earn"])
        tx.ledger.lock_member(member_id)
        due = tx.ledger.anything_due_later(member_id, tx.now)
        day = tx.now.replace(hour=0, minute=0, second=0, microsecond=0)
        earned_today = tx.ledger.points_earned_between_later(
            member_id, cmd.partner_id, day, day + timedelta(days=1))
        accounts = tx.ledger.member_accounts_and_balances_later(member_id)
        if purchased():
            raise PurchaseAlreadyRecorded(
                f"purchase {cmd.purchase_id!r} already earned points; to correct it, return it",
                field="purchaseId",
            )
        if due():  # housekeeping writes first; the member's balances are read again after
            sweep_due(tx, member_id)
            member = member_state(tx, member_id)
        else:
            member = MemberState(member_id, *accounts())
        today = earned_today()
        candidates = ctx.campaigns.candidates(cmd.partner_id, cmd.channel, occurred_at)
        promotions, quote = NO_PROMOTIONS, None
        op_id = operation_id()
        # None, and no coupon presented: nothing more is read or written (the hot path).
        if candidates or cmd.coupon_codes:
            # Funders are charged in load_promotions (lock order: purchase, member, coupons,
            # counters, funders, referrers); ``today`` counts the partner's own points only.
            quote = quote_earn(rule, request.facts, earned_today=today)
            promotions = load_promotions(
                tx, candidates, member_id,
                purchase_context(cmd.partner_id, cmd.channel, occurred_at, request.facts,
                                 quote.points),
                rule, cmd.coupon_codes, ctx.tiers)
            # Coupons whose campaign applied are used, a referral claimed (decision 025).
            promotions = claim_mechanics(tx, promotions, member_id, op_id)
        plan = plan_earn(
            member, rule, today,
            tx.ledger.partner_account(cmd.partner_id, AccountKind.ISSUED),
            EarnInput(cmd.partner_id, cmd.channel, cmd.purchase_id, cmd.amount,
                      cmd.idempotency_key, fingerprint, request.facts, occurred_at, tx.now,
                      op_id, show_available=not who.by_card), promotions, quote)
        apply(tx, plan.postings)
        if ctx.tiers is not None:  # the base points posted qualify, in the purchase's month
            record_qualifying(tx.conn, member_id, occurred_at, plan.result.base_points)
        return plan.result

    return run_command(ctx, cmd.partner_id, cmd, Earned, body)


def preview_earn(ctx: LedgerContext, cmd: EarnPoints) -> PreviewedEarn:
    """What ``earn_points`` would give now, without posting (caps per day are not applied:
    the preview needs no member)."""
    partner = ctx.rules.partner(cmd.partner_id)
    now = ctx.clock.now()
    checks = Checks()
    facts = checks.run(lambda: _facts(cmd, partner.policy))
    occurred_at = checks.run(lambda: _occurred_at(cmd.occurred_at, now, partner.policy))
    checks.run(lambda: require_currency(partner, cmd.amount, "amount"))
    checks.raise_first()
    assert facts is not None and occurred_at is not None
    rule = ctx.rules.rule_at(cmd.partner_id, occurred_at)
    quote = quote_earn(rule, facts, earned_today=0)
    return PreviewedEarn(quote.points, quote.uncapped_points, quote.capped_by, rule.version,
                         quote.explanation)


@dataclass(frozen=True, slots=True)
class Spend:
    """What a spend's planner needs, loaded: the member's state, its spendable lots, the rule."""

    state: MemberState
    lots: list[OpenLot]
    rule: RuleVersion


@dataclass(frozen=True, slots=True)
class SpendRequest:
    partner: PartnerDefinition
    who: Who


def validate_spend(partner: PartnerDefinition, cmd: SpendCommand) -> SpendRequest:
    """Every check on a spend request alone (redeem and authorise), no I/O, in result-code
    order (``precedence``)."""
    checks = Checks()
    checks.run(lambda: check_key(cmd.idempotency_key))
    checks.run(lambda: _check_points(cmd.points))
    checks.run(lambda: _check_basket(cmd.basket))
    checks.run(lambda: require_currency(partner, cmd.basket, "basketAmount"))
    who = checks.run(lambda: who_named(cmd.partner_id, cmd.customer_id, cmd.card_number,
                                       cmd.store_code, spend=True))
    checks.raise_first()
    assert who is not None
    return SpendRequest(partner, who)


def check_spend_request(ctx: LedgerContext, cmd: SpendCommand) -> SpendRequest:
    """The request checked (no I/O), then admitted (the till's budget, the store-code secret):
    everything before the transaction, for redeem and authorise."""
    request = validate_spend(ctx.rules.partner(cmd.partner_id), cmd)
    return SpendRequest(request.partner, admit(ctx, request.who))


def load_spend(ctx: LedgerContext, request: SpendRequest, tx: Tx,
               cmd: SpendCommand) -> Spend:
    """Inside the transaction: the member (UNKNOWN_MEMBER), the rule in force
    (RULE_NOT_IN_FORCE), then, with the member locked and swept, its balances and lots."""
    member_id = request.who.member_in(tx, spend=True)
    rule = ctx.rules.rule_at(cmd.partner_id, tx.now)
    tx.ledger.lock_member(member_id)
    sweep_member(tx, member_id)
    return Spend(member_state(tx, member_id), spendable_lots(tx, member_id), rule)


def spend_discount(ctx: LedgerContext, tx: Tx, cmd: SpendCommand,
                   spend: Spend) -> tuple[RedeemPromotion | None, Presented]:
    """Campaigns at a redemption or a hold (issue 12): a PointsDiscount's better point value,
    read with the member locked; none in force at this partner reads nothing more. Coupons
    presented are checked here too (decision 025): one that unlocks the discount is used with
    the spend (the caller consumes it), every code gets its line in the explanation."""
    candidates = ctx.campaigns.candidates(cmd.partner_id, cmd.channel or "", tx.now)
    if not candidates and not cmd.coupon_codes:
        return None, NOTHING_PRESENTED
    return load_redeem_promotions(
        tx, candidates, spend.state.member_id,
        redeem_context(cmd.partner_id, cmd.channel or "", tx.now, cmd.basket),
        spend.rule, cmd.coupon_codes, ctx.tiers)


def spend_input(request: SpendRequest, cmd: SpendCommand, tx: Tx,
                fingerprint: str) -> SpendInput:
    return SpendInput(cmd.partner_id, request.partner.currency, cmd.points,
                      cmd.basket.amount_minor, cmd.idempotency_key, fingerprint,
                      cmd.purchase_id, cmd.channel, tx.now, operation_id())


def redeem_points(ctx: LedgerContext, cmd: RedeemPoints) -> Redeemed:
    request = check_spend_request(ctx, cmd)

    def body(tx: Tx, fingerprint: str) -> Redeemed:
        spend = load_spend(ctx, request, tx, cmd)
        discount, presented = spend_discount(ctx, tx, cmd, spend)
        rule = discount.rule(spend.rule) if discount else spend.rule
        plan = plan_spend(spend.state, spend.lots, rule,
                          tx.ledger.partner_account(cmd.partner_id, AccountKind.REDEEMED),
                          spend_input(request, cmd, tx, fingerprint),
                          (discount.promotion,) if discount else (), presented.explanation)
        coupons.consume(tx.conn, presented, spend.state.member_id, plan.result.operation_id,
                        tx.now)
        apply(tx, plan.postings)
        return plan.result

    return run_command(ctx, cmd.partner_id, cmd, Redeemed, body)


def return_purchase(ctx: LedgerContext, cmd: ReturnPurchase) -> Returned:
    """Reverse earned points in proportion to the amount returned (ceil: never leaves the member
    points for goods given back) and refund points spent on the purchase (floor: never refunds
    more than was spent). Cumulative, so several partial returns add up to the whole exactly."""
    partner = ctx.rules.partner(cmd.partner_id)
    validate_return(partner, cmd)

    def body(tx: Tx, fingerprint: str) -> Returned:
        # Locks before reads: earlier returns are read with the purchase locked, spends with
        # the member locked too, so two returns of one purchase cannot reverse the same part.
        tx.ledger.lock_purchase(cmd.partner_id, cmd.purchase_id)
        history = tx.ledger.purchase_operations(cmd.partner_id, cmd.purchase_id,
                                                ["earn", "return"])
        earns = [o for o in history if o.kind == "earn"]
        if not earns:
            raise NotFound(f"no purchase {cmd.purchase_id!r} earned points at this partner",
                           field="purchaseId")
        earn = earns[0]
        assert earn.member_id is not None and earn.amount_minor is not None
        member_id = _survivor_locked(tx, earn.member_id)
        prior_ops = [o for o in history if o.kind == "return"]
        spends = _own_spends(tx, cmd, member_id)
        sweep_member(tx, member_id)
        lot_repo = LotRepository(tx.conn)
        earned_lots, pending_lot = lot_repo.earn_lots(earn.id)
        sources = [s.id for s in spends] + [s.parent_id for s in spends
                                            if s.kind == "capture" and s.parent_id is not None]
        takes = lot_repo.lot_movements_of(sources)
        restored = lot_repo.lot_restores_of([p.id for p in prior_ops])
        current = lot_repo.current_lots([t.lot_id for t in takes] + list(restored))
        earned = from_json(Earned, earn.result)
        awards = earned.promotions
        prior = tuple(from_json(Returned, r.result) for r in prior_ops)
        op_id = operation_id()
        returned_total = cmd.amount.amount_minor + max(
            (p.amount_returned_total.amount_minor for p in prior), default=0)
        if awards and returned_total == earn.amount_minor:
            # A full return gives back the coupons the earn used (decision 025), first: the
            # earn's lock order (purchase, member, coupons, counters, funders, referrers).
            coupons.restore(tx.conn, earn.id, op_id, tx.now)
        budgeted = budgeted_of(tx, awards)
        # The referrer's reward of this purchase (decision 035). A referrer merged into the
        # purchaser since holds the same wallet: its share is taken first, so the purchaser's
        # answer shows the wallet after both. Any other referrer is locked last (below).
        referral = _referral_of(tx, earn.id, prior_ops)
        if referral is not None:
            # The counters and funders both sides release, locked before the referrer: a
            # referred member's first earn locks the counter, then the referrer (decision 020).
            lock_releases(tx, budgeted | referral.budgeted,
                          [a.funder for a in awards if a.points]
                          + [a.funder for a in referral.reward.promotions])
        first = referral is not None and referral.referrer == member_id
        taken_first = _reverse_referrer(ctx, tx, earn.id, referral, op_id, returned_total,
                                        earn.amount_minor, earned) if (
            first and referral is not None and returned_total <= earn.amount_minor) else None
        request = ReturnInput(
            cmd.partner_id, partner.currency, cmd.purchase_id, cmd.amount.amount_minor,
            cmd.idempotency_key, fingerprint, tx.now, op_id, earn.id,
            earn.points - earned.bonus_points, earn.amount_minor, prior,
            -sum(s.points for s in spends), partner.policy.negative_balance_after_return,
            pending_lot, tuple(_lots_for_return(tx, member_id, set(current.values()))),
            earned_lots, tuple(takes), restored, current, awards,
            funder_accounts(tx.ledger, (a.funder for a in awards if a.points)), budgeted,
            awarded_to=earn.member_id)
        state = member_state(tx, member_id)
        plan = plan_return(state, tx.ledger.partner_account(cmd.partner_id, AccountKind.ISSUED),
                           tx.ledger.partner_account(cmd.partner_id, AccountKind.REDEEMED),
                           request)
        # Refunded into lots past their expiry: they expire in the same apply, no second sweep.
        expire = plan_refund_expiry(state, request, plan,
                                    tx.ledger.coalition_account(AccountKind.BREAKAGE),
                                    iter(operation_id, None))
        apply(tx, plan.postings + expire)
        # Their funders' funding back: what came back to each funder's account, not what the
        # planner reversed; points the member kept (unrecovered) stay issued by their funder.
        funding.release_all(tx.conn, _paid_back(plan.postings, request.funders), tx.now)
        if ctx.tiers is not None:
            # The base points reversed stop qualifying, in the earn's month, for the member
            # who holds them now: the survivor, when the earn's member was merged since (its
            # months moved with the merge; decision 026).
            result = plan.result
            record_returned(tx.conn, member_id, earn.id,
                            result.points_reversed_total - result.bonus_reversed)
        # Last: another member's referral reward, after the purchaser's funders (the earn's
        # lock order: ... funders, referrers).
        taken = taken_first if first or referral is None else _reverse_referrer(
            ctx, tx, earn.id, referral, op_id, returned_total, earn.amount_minor, earned)
        result = plan.result
        unrecovered = result.points_unrecovered + sum(p.points_unrecovered for p in prior) + (
            0 if referral is None else sum(p.points_unrecovered for p in referral.prior)) + (
            0 if taken is None else taken.points_unrecovered)
        if returned_total == earn.amount_minor and not unrecovered:
            # Every rewarded point came back: the referral is open again (decision 035).
            referrals.reopen(tx.conn, sorted({earn.member_id, member_id}), earn.id)
        return result

    return run_command(ctx, cmd.partner_id, cmd, Returned, body)


@dataclass(frozen=True, slots=True)
class _Referral:
    """A referrer's reward of an earn (its ``bonus`` operation), what earlier returns took
    back of it, and the member who holds it now (the referrer's survivor); the reward's
    awards and which of their campaigns keep counters."""

    bonus: OperationRow
    reward: BonusPosted
    budgeted: frozenset[str]
    prior: tuple[ReferralReversed, ...]
    referrer: str


def _referral_of(tx: Tx, earn_id: str, prior_ops: Sequence[OperationRow]) -> _Referral | None:
    """The earn's referral reward, if it posted one: found by id (the earn's id and "r0"; a
    member has one referral, so one referrer), as are its reversals (each return's id and
    "r0"). One primary-key read when there is none."""
    bonus_id = f"{earn_id}r0"
    prior_ids = [f"{p.id}r0" for p in prior_ops]
    rows = tx.ledger.operations_by_id([bonus_id, *prior_ids])
    bonus = rows.get(bonus_id)
    if bonus is None or bonus.member_id is None:
        return None
    reward = from_json(BonusPosted, bonus.result)
    return _Referral(bonus, reward, budgeted_of(tx, reward.promotions),
                     tuple(from_json(ReferralReversed, rows[i].result)
                           for i in prior_ids if i in rows),
                     tx.members.survivor_of(bonus.member_id))


def _reverse_referrer(ctx: LedgerContext, tx: Tx, earn_id: str, referral: _Referral,
                      return_id: str, returned_total: int, purchase_total: int,
                      earned: Earned) -> ReferralReversed | None:
    """The referrer's side of a return (decision 035): the return's share of the reward
    taken back from the referrer's wallet (:func:`plan_referral_return`), its funders
    released for what came back. A full return that recovered every rewarded point, the
    purchaser's and the referrer's, reopens the referral (the caller): the referred member's
    next qualifying purchase is the first again, while a reward spent before the return
    keeps it closed, so buying and returning cannot mint rewards."""
    bonus = referral.bonus
    reward = referral.reward
    referrer = referral.referrer
    tx.ledger.lock_member(referrer)
    sweep_member(tx, referrer)
    own_lots, _ = LotRepository(tx.conn).earn_lots(bonus.id)
    awards = reward.promotions
    earn_rule = tx.ledger.rule_of(earn_id)  # the reward was priced at it, so is its reversal
    request = ReferralReturnInput(
        f"{return_id}r0", bonus.id, bonus.partner_id, awards, referral.prior, returned_total,
        purchase_total, tuple(spendable_lots(tx, referrer)), frozenset(own_lots),
        funder_accounts(tx.ledger, (a.funder for a in awards)), referral.budgeted,
        frozenset(a.campaign_id for a in earned.promotions), tx.now,
        None if earn_rule is None else ctx.rules.rule(*earn_rule), awarded_to=bonus.member_id)
    plan = plan_referral_return(member_state(tx, referrer), request)
    if plan is None:
        return None
    apply(tx, plan.postings)
    funding.release_all(tx.conn, _paid_back(plan.postings, request.funders), tx.now)
    return plan.result


def _paid_back(postings: Iterable[Posting], funders: Mapping[str, Account]) -> dict[str, int]:
    """The points a return's postings move back into each funder's account (the bonus the
    member still held; none for what is unrecovered)."""
    funder_of = {account.id: funder for funder, account in funders.items()}
    back: dict[str, int] = {}
    for posting in postings:
        for move in posting.moves:
            funder = funder_of.get(move.credit.id)
            if funder is not None:
                back[funder] = back.get(funder, 0) + move.amount
    return back


def validate_return(partner: PartnerDefinition, cmd: ReturnPurchase) -> None:
    """Every check on a return request alone, no I/O, in result-code order."""
    first_failure(lambda: check_key(cmd.idempotency_key),
                  lambda: _check_positive(cmd.amount, "amount returned", "amount"),
                  lambda: require_currency(partner, cmd.amount, "amount"))


def _survivor_locked(tx: Tx, member_id: str) -> str:
    """The member that holds ``member_id``'s points now (itself, or the survivor of a merge),
    locked; resolved again under the lock, since a merge may commit while we wait for it."""
    while True:
        survivor = tx.members.survivor_of(member_id)
        tx.ledger.lock_member(survivor)
        if tx.members.survivor_of(member_id) == survivor:
            return survivor


def _own_spends(tx: Tx, cmd: ReturnPurchase, member_id: str) -> list[OperationRow]:
    """The earning member's own spends on the purchase (theirs also when made before a merge,
    under an account since absorbed): each spender's survivor resolved once."""
    spends = tx.ledger.purchase_operations(cmd.partner_id, cmd.purchase_id,
                                           ["redeem", "capture"])
    survivors = {m: tx.members.survivor_of(m)
                 for m in sorted({s.member_id for s in spends if s.member_id is not None})}
    return [s for s in spends
            if s.member_id is not None and survivors[s.member_id] == member_id]


def _lots_for_return(tx: Tx, member_id: str, refund_targets: set[int]) -> list[OpenLot]:
    """The member's spendable lots and the lots a refund may go back into."""
    lots = spendable_lots(tx, member_id)
    missing = sorted(refund_targets - {lot.id for lot in lots})
    return lots + [OpenLot(i, origin, remaining, expires_at, pending, available_at)
                   for i, origin, remaining, expires_at, pending, available_at
                   in LotRepository(tx.conn).lots_by_id(missing)]


def _facts(cmd: EarnPoints, policy: PartnerPolicy) -> CheckedPurchase:
    checks = Checks()
    checks.run(lambda: _check_amount(cmd.amount))
    channel = checks.run(lambda: _channel(cmd.channel))
    lines = tuple(LineItem(line.amount_minor, line.category, line.quantity_milli, line.sku)
                  for line in cmd.lines)
    for index, line in enumerate(lines):
        checks.run(partial(_check_unit_price, line, policy, f"lines[{index}].quantityMilli"))
    # The purchase's own checks (lines adding up) do not look at the channel.
    facts = PurchaseFacts(cmd.amount.amount_minor, cmd.amount.currency,
                          channel or Channel.STORE, lines)
    checked = checks.run(partial(checked_purchase, facts))
    checks.raise_first()
    assert checked is not None
    return checked


def _check_amount(amount: Money) -> None:
    if amount.amount_minor <= 0 or amount.amount_minor > MAX_AMOUNT_MINOR:
        raise InvalidAmount(
            f"amount must be between 1 and {MAX_AMOUNT_MINOR} minor units", field="amount"
        )


def _channel(text: str) -> Channel:
    try:
        return Channel(text)
    except ValueError:
        raise InvalidInput(f"unknown channel {text!r}", field="channel") from None


def _check_positive(amount: Money, what: str, field: str) -> None:
    if amount.amount_minor <= 0:
        raise InvalidAmount(f"{what} must be positive", field=field)


def _check_basket(basket: Money) -> None:
    if basket.amount_minor <= 0:  # the rule engine's own check, made before the rule is read
        raise InvalidAmount(
            f"basket amount must be positive, got {basket.amount_minor} minor units",
            field="basketAmount")


def _check_unit_price(line: LineItem, policy: PartnerPolicy, field: str) -> None:
    """price per unit = amount * 1000 / quantityMilli, compared by cross-multiplication (exact)."""
    quantity = line.quantity_milli
    if quantity is None:
        return
    if quantity <= 0:
        raise InvalidInput("quantityMilli must be positive", field=field)
    low, high = policy.unit_price_min_minor, policy.unit_price_max_minor
    scaled = line.amount_minor * 1000
    if (low is not None and scaled < low * quantity) or (
            high is not None and scaled > high * quantity):
        raise InvalidInput(
            f"{quantity / 1000:,.3f} units for {line.amount_minor} minor units is not a "
            f"plausible price here (one unit costs {low if low is not None else 0} to "
            f"{high if high is not None else 'any'} minor units)", field=field)


def _occurred_at(occurred_at: datetime | None, now: datetime,
                 policy: PartnerPolicy) -> datetime:
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurredAt needs a time zone offset", field="occurredAt")
    occurred_at = occurred_at.astimezone(UTC)
    if occurred_at > now + FUTURE_SKEW:
        raise InvalidInput("occurredAt is in the future", field="occurredAt")
    if occurred_at < now - timedelta(days=policy.max_backdate_days):
        raise InvalidInput(
            f"occurredAt is more than {policy.max_backdate_days} days in the past (this "
            "partner's backdating window)", field="occurredAt")
    return occurred_at


def _check_points(points: int) -> None:
    if points <= 0 or points > MAX_POINTS:
        raise InvalidAmount(f"points must be between 1 and {MAX_POINTS}", field="points")


def rule_for_operation(ctx: LedgerContext, partner_id: str, version: int) -> RuleVersion:
    return ctx.rules.rule(partner_id, version)


