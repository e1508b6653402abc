"""Which eligible members a campaign holds out (docs/decisions/034).

A campaign with ``holdout_percent`` p never gives itself to the members whose bucket is below
``p * 100`` of 10,000: the bucket is the first 8 bytes of SHA-256(campaign id, a NUL, member id)
as a big-endian integer mod 10,000. It is deterministic (the same member is held out of the same
campaign on every earn, on every worker, forever), independent between campaigns (the id is in
the hash) and uniform to within 2^64 mod 10^4 / 2^64 (about 10^-16). It needs no I/O: one hash
per campaign with a holdout whose conditions held, on the earn's path. The NUL keeps
("ab", "c") and ("a", "bc") apart.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(campaign_id: str, member_id: str) -> int:
    """The member's bucket in the campaign, 0 to 9,999."""
    digest = hashlib.sha256(f"{campaign_id}\x00{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def held_out(campaign_id: str, member_id: str, percent: int) -> bool:
    """Whether the member is in the campaign's holdout group (never, at 0 %)."""
    return percent > 0 and bucket(campaign_id, member_id) < percent * (BUCKETS // 100)
