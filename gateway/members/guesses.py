"""Rate limits on presenting codes, so that a partner cannot guess its way to a member.

A link code (8 characters from 26, about 2·10^11 values) and the digit form of a store code
(11 random digits) are short enough to type; what keeps them from being guessed is that they
live minutes, and that every attempt a partner makes is counted here: per partner customer
(one till or one web session hammering) and per partner (many customer ids used to spread the
guesses). A scanned store code carries a 130-bit signature and needs no limit. A member
merging a second account proves it with card number + activation code: those tries are counted
per member and per source address (its email + password is limited as sign-in is,
``gateway.members.credentials``).

Every attempt is counted, right or wrong: the limiters (``gateway.limits``, in process or
Redis via ``gateway.backends``) answer "hit and count", and a budget that only wrong guesses
spent would need a read without a count before each try, or a blocked caller could still get a
right guess through. Linking is rare and manual entry at a till too, so honest callers stay far
below these budgets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.core.errors import RateLimited
from gateway.limits import Decision, InProcessRateLimiter, RateLimiter

# (per minute, burst)
PER_CUSTOMER = (5, 5)
PER_PARTNER = (60, 30)
STORE_DIGITS_PER_PARTNER = (120, 60)
# Merging a second account by card number + activation code (a member's own action): per
# member (one session guessing cards) and per source address (many sessions on one host).
MERGE_PER_MEMBER = (5, 5)
MERGE_PER_SOURCE = (30, 20)

LimiterFactory = Callable[[int, int], RateLimiter]


def in_process(per_minute: int, burst: int) -> RateLimiter:
    return InProcessRateLimiter(per_minute, burst=burst)


@dataclass
class CodeGuesses:
    per_customer: RateLimiter
    per_partner: RateLimiter
    store_digits: RateLimiter
    merge_per_member: RateLimiter
    merge_per_source: RateLimiter

    @classmethod
    def build(cls, make: LimiterFactory = in_process) -> CodeGuesses:
        return cls(make(*PER_CUSTOMER), make(*PER_PARTNER), make(*STORE_DIGITS_PER_PARTNER),
                   make(*MERGE_PER_MEMBER), make(*MERGE_PER_SOURCE))

    def link_attempt(self, partner_id: str, customer_id: str) -> None:
        """Count one attempt to link with a code; ``RateLimited`` when over either budget."""
        _admit(self.per_customer.hit(f"code:{partner_id}:{customer_id}"))
        _admit(self.per_partner.hit(f"code:{partner_id}"))

    def store_digits_attempt(self, partner_id: str) -> None:
        """Count one store code typed in as digits at this partner."""
        _admit(self.store_digits.hit(f"store-digits:{partner_id}"))


    def merge_attempt(self, member_id: str, source: str | None) -> None:
        """Count one try to prove a second account by card number and activation code."""
        _admit(self.merge_per_member.hit(f"merge:{member_id}"))
        if source is not None:
            _admit(self.merge_per_source.hit(f"merge-source:{source}"))


def _admit(decision: Decision) -> None:
    if not decision.allowed:
        raise RateLimited(decision.retry_after_s)
