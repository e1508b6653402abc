"""The points ledger: double entry, append-only, exact.

Guarantees (DESIGN §4), each enforced here, in the database and in a property test:

1. A transfer moves a positive integer amount of points from one account to another; debits
   equal credits, so all balances sum to zero. (``transfers.amount > 0`` CHECK; ``verify``.)
2. A transfer is never updated or deleted; corrections are new, linked operations.
   (Triggers refuse UPDATE/DELETE on ``transfers``, ``lot_movements``, ``operations``.)
3. A member account's stored balance equals the sum of its transfers. (Updated in the same
   transaction as the transfer; ``verify`` recomputes it.)
4. A wallet never goes below zero. A return that takes back more than the wallet holds records
   the rest on the member's ``debt`` account (if the partner's policy allows debt), repaid first
   from future earns. (CHECK ``balance >= 0`` on wallet/held/pending, ``<= 0`` on debt.)
5. At most one operation per (partner, idempotency key); a replay returns the stored answer, a
   different request under the same key is ``IdempotencyKeyReused``. (UNIQUE constraint;
   writers serialised per member; a lost race is retried as a replay.)
6. An operation is one or more transfers committed atomically, tagged with partner, channel,
   purchase reference and the rule version used.
7. A partner reaches a member only with the member's consent: a customer id it linked with a
   link code, a store code or OAuth, or a store code shown at the till. A bare card number earns
   but never spends. (``identify.who_named``, ``Who.member_in``; tests/api/test_consent_attack.py.)

Result codes, in the order they win for a points command (stated once, as code, in
``gateway.ledger.precedence.RESULT_ORDER``; "/" marks one level, the listed order breaks ties):
CONSENT_REQUIRED / INVALID_INPUT / INVALID_AMOUNT / CURRENCY_MISMATCH (the request itself,
checked without I/O when the command is built; a spend named by a bare card number is refused
as such whatever else is wrong with it),
RATE_LIMITED (store code digits typed at the till), IDEMPOTENCY_KEY_REUSED (the key),
UNKNOWN_MEMBER / NOT_FOUND (what it refers to), RULE_NOT_IN_FORCE, PURCHASE_ALREADY_RECORDED /
NOTHING_TO_RETURN (the rule and the purchase's history), REDEMPTION_NOT_ACCEPTED, CAP_EXCEEDED,
INSUFFICIENT_POINTS (the rules and the balance), HOLD_ALREADY_SETTLED / HOLD_EXPIRED /
CAPTURE_EXCEEDS_HOLD (the hold's state). An INVALID_AMOUNT that depends on stored state (a
return of more than is left, a redemption under the rule's ``min_points``) is checked where that
state is: with the purchase's history, with the rule's limits.
"""
