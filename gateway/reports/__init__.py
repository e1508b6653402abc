"""Effectiveness reports (issue 13, docs/decisions/034, docs/reports.md).

``effectiveness``: what a programme item (a campaign; challenges and draws plug in through
``items.ItemSource``) gave, cost and changed, against its holdout group, with Welch's 95 %
interval (``stats``). ``programme``: the coalition's active and cross-brand members, earn/burn,
breakage, outstanding points by partner and cohort retention, aggregated by the database.
``service`` says who may read which; ``render`` and ``cli`` print them."""
