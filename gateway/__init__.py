"""Coalition Gateway: one loyalty currency shared by many merchant brands.

The package is layered (imports point downward only; import-linter enforces it):
app → api → auth → ledger/members (domain services) → db → core. ``partners`` (a sibling
top-level package) holds partner definitions and the pure conversion-rule engine.
"""
