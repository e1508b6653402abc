"""Campaigns: rules that change what a basket earns or costs, paid for by a funder (issue 12).

``model`` holds a campaign's definition (immutable, versioned like conversion rules) and what an
evaluation returns; ``engine`` compiles a version once and evaluates a purchase against every
compiled campaign, with no I/O; the repositories keep versions, budgets and awards.
"""
