"""Limits on the OAuth endpoints that hash secrets, checked before any secret is hashed.

``/oauth/token`` (client credentials and the code exchange), ``/oauth/introspect`` and
``/oauth/revoke`` verify a client secret with scrypt (~50 ms of one core, 16 MiB). Unlimited,
a flood of wrong secrets guesses secrets and starves every other request of CPU (an outside
probe raised another partner's GraphQL median from 3.7 to 27 ms). So each request first spends
one unit of two budgets, keyed by the client id it names and by its source address; a request
either budget refuses is answered 429 with ``Retry-After`` and hashes nothing. A refused client
authentication then spends :data:`FAILURE_COST` more units of both: that is the back-off, a
client id or address that keeps failing runs dry five times faster than one that succeeds,
and stays dry (one wrong secret per ``FAILURE_COST`` refill intervals) while it keeps failing.

Trade-off (docs/decisions/008-token-endpoint-limits.md): anyone can spend a client id's budget
by sending wrong secrets under it, which delays that partner's next token by up to
``Retry-After``. Partners cache a token for its lifetime (minutes), so a token request is rare
and a retry after the wait succeeds; the address budget bounds how fast one source can do it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.limits import Decision, InProcessRateLimiter, RateLimiter

# Per client id: 20 requests at once, then one every 2 s. Per source address (a partner's NAT
# can carry several clients): 100 at once, then five a second.
CLIENT_PER_MINUTE, CLIENT_BURST = 30, 20
ADDRESS_PER_MINUTE, ADDRESS_BURST = 300, 100
# Extra units a refused authentication costs, on top of the request's own unit.
FAILURE_COST = 4
MAX_KEY = 200  # a client id longer than any real one still makes one bounded key

MakeLimiter = Callable[[str, int, int], RateLimiter]


def in_process(name: str, per_minute: int, burst: int) -> RateLimiter:
    return InProcessRateLimiter(per_minute, burst=burst)


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    client: RateLimiter
    address: RateLimiter

    @classmethod
    def build(cls, make: MakeLimiter = in_process) -> EndpointLimits:
        """On the project's limiter backend (``Backends.make_limiter``: in process or Redis)."""
        return cls(client=make("oauth-client", CLIENT_PER_MINUTE, CLIENT_BURST),
                   address=make("oauth-address", ADDRESS_PER_MINUTE, ADDRESS_BURST))

    def admit(self, client_id: str | None, address: str | None) -> Decision:
        """One unit of each budget the request names; the first refusal wins."""
        for limiter, key in self._keys(client_id, address):
            decision = limiter.hit(key)
            if not decision.allowed:
                return decision
        return Decision(True, 0)

    def failed(self, client_id: str | None, address: str | None) -> None:
        """A refused authentication: the back-off units (a refusal here needs no answer)."""
        for limiter, key in self._keys(client_id, address):
            for _ in range(FAILURE_COST):  # unit by unit: a nearly dry budget still runs dry
                if not limiter.hit(key).allowed:
                    break

    def _keys(self, client_id: str | None,
              address: str | None) -> list[tuple[RateLimiter, str]]:
        keys = [(self.address, address)] if address else []
        if client_id:
            keys.append((self.client, client_id[:MAX_KEY]))
        return keys
