"""Settlement: who owes whom for a period, closed period by period (DESIGN §7, issue 4).

Guarantees, in order of precedence:

1. Every figure is exact. Points are ``int``; money is integer minor units of the settlement
   currency (``Settings.settlement_currency``); prices are exact ``Fraction``s from the rule
   version in force when the operation happened. Each rounding is named (see ``pricing``).
2. A report balances: the partners' net positions plus the coalition's own line sum to zero to
   the minor unit, and the origin → redeemer matrix (from lot movements) equals each partner's
   redeemed points (from transfers). A report that does not is ``SettlementUnbalanced``, never
   output. Every bonus point is charged to its funder (issue 12): transfers out of
   ``partner:F:promotions`` (F pays) and ``coalition:bonus`` (the coalition's own cost) are
   priced at the earn's rule version; ``exposure`` shows the funders' funding accounts
   (``gateway.promotions.funding``).
3. A closed period is immutable: its report is stored once as canonical JSON with a SHA-256
   hash and served from there; recomputing it from the ledger (``recompute_closed``) reproduces
   the hash; the tables refuse UPDATE and DELETE.
4. Reports aggregate in SQL (GROUP BY in the database) and stream the grouped rows; a period is
   never loaded into memory, and nothing is rolled up on the write path.

Domain code: no strawberry, starlette or ``gateway.api`` here (import-linter contract).
"""
