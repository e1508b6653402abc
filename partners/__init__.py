"""Partner definitions and the pure conversion-rule engine.

Nothing here touches a database, a clock or the network: given a rule version and the facts of
a purchase, the engine says how many points it earns and why; given a basket, what points may pay.
"""
