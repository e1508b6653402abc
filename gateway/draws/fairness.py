"""The verifiable-fairness core of a prize draw (decision 033, docs/draws.md): pure functions,
no storage, so the CLI's ``verify`` and the close run the very same code on the published data.

Published before entries open: ``commitment = SHA-256(seed)`` (hex), ``seed`` 32 random bytes.
Published at close: the seed (hex), the entry list and ``entry_list_hash``, and the winners.

- **Entrant**: ``HMAC-SHA256(entrant_key, member_id)`` as 64 lowercase hex characters; the key is
  the draw's own secret (never published), so the list names no member and links no two draws.
- **Canonical entry list**: one line ``<entrant>:<entries>\\n`` per entrant (entries in decimal,
  > 0), sorted by entrant (ASCII); UTF-8. ``entry_list_hash = SHA-256(those bytes)`` (hex).
- **Tickets**: the list expanded in that order, entrant ``e`` with ``n`` entries giving ``n``
  consecutive tickets.
- **Winners**: prize slots are the prizes in draw order, each repeated ``quantity`` times. A
  counter ``k`` starts at 0. For each slot, while tickets remain: ``h = SHA-256(seed ||
  entry_list_hash || k as 8-byte big-endian)`` (the raw 32 bytes of the seed and of the list
  hash), read as a big-endian integer; ``k += 1``; with ``m`` tickets remaining, ``h`` is
  rejected (draw again with the next ``k``) when ``h >= 2**256 - (2**256 mod m)``, so every
  ticket is equally likely (no modulo bias); otherwise ticket ``h mod m`` wins the slot. With
  one prize per member every ticket of the winning entrant leaves the list (order kept);
  otherwise only the winning ticket does. Slots left when no ticket remains are not awarded."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

ALGORITHM = "coalition-draw-v1"
SEED_BYTES = 32
_SPACE = 2**256


@dataclass(frozen=True, slots=True)
class Entrant:
    entrant: str  # 64 hex characters
    entries: int


@dataclass(frozen=True, slots=True)
class Win:
    position: int  # the prize slot, 0-based, in draw order
    prize: str
    entrant: str
    ticket: int  # the index drawn among the tickets remaining then


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def entrant_id(key: bytes, member_id: str) -> str:
    return hmac.new(key, member_id.encode(), hashlib.sha256).hexdigest()


def canonical(entrants: Sequence[Entrant]) -> bytes:
    """The list's canonical bytes (sorted here, whatever order it came in)."""
    ordered = sorted(entrants, key=lambda e: e.entrant)
    return "".join(f"{e.entrant}:{e.entries}\n" for e in ordered).encode()


def entry_list_hash(entrants: Sequence[Entrant]) -> str:
    return hashlib.sha256(canonical(entrants)).hexdigest()


def slots(prizes: Sequence[tuple[str, int]]) -> list[str]:
    return [name for name, quantity in prizes for _ in range(quantity)]


def pick_winners(seed: bytes, entrants: Sequence[Entrant], prizes: Sequence[tuple[str, int]],
                 *, one_prize_per_member: bool) -> list[Win]:
    """The documented algorithm. The remaining tickets are kept as counts per entrant in a
    Fenwick tree (a ticket index is found, and an entrant's tickets removed, in O(log n)), which
    is the expanded ticket list exactly: an entrant's tickets are consecutive and alike, so
    removing any one of them leaves the same list. Rebuilding the list per prize took 10 s for
    600,000 tickets and 100 prizes."""
    list_hash = bytes.fromhex(entry_list_hash(entrants))
    ordered = sorted(entrants, key=lambda e: e.entrant)
    tickets = _Tickets([e.entries for e in ordered])
    wins: list[Win] = []
    counter = 0
    for position, prize in enumerate(slots(prizes)):
        remaining = tickets.total
        if not remaining:
            break
        bound = _SPACE - (_SPACE % remaining)
        while True:
            digest = hashlib.sha256(seed + list_hash + counter.to_bytes(8, "big")).digest()
            counter += 1
            value = int.from_bytes(digest, "big")
            if value < bound:
                break
        index = value % remaining
        holder = tickets.holder_of(index)
        wins.append(Win(position, prize, ordered[holder].entrant, index))
        tickets.remove(holder, everything=one_prize_per_member)
    return wins


class _Tickets:
    """Tickets left per entrant (in list order), with prefix sums in a Fenwick tree."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.counts = list(counts)
        self.size = len(counts)
        self.tree = [0] * (self.size + 1)
        for i, count in enumerate(counts, start=1):
            self.tree[i] += count
            parent = i + (i & -i)
            if parent <= self.size:
                self.tree[parent] += self.tree[i]
        self.total = sum(counts)
        self.top = 1 << max(self.size.bit_length() - 1, 0)

    def holder_of(self, ticket: int) -> int:
        """The entrant (0-based) holding the ``ticket``-th remaining ticket."""
        position, left, step = 0, ticket, self.top
        while step:
            ahead = position + step
            if ahead <= self.size and self.tree[ahead] <= left:
                position, left = ahead, left - self.tree[ahead]
            step >>= 1
        return position

    def remove(self, holder: int, *, everything: bool) -> None:
        taken = self.counts[holder] if everything else 1
        self.counts[holder] -= taken
        self.total -= taken
        i = holder + 1
        while i <= self.size:
            self.tree[i] -= taken
            i += i & -i


def check(seed_hex: str, commitment_hex: str, list_hash_hex: str,
          entrants: Sequence[Entrant], prizes: Sequence[tuple[str, int]],
          winners: Sequence[tuple[str, str]], *, one_prize_per_member: bool) -> list[str]:
    """What is wrong with a published proof (empty: it verifies). ``winners``: (prize,
    entrant) in slot order, as published."""
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        return ["the seed is not hex"]
    problems = []
    if commitment(seed) != commitment_hex:
        problems.append("SHA-256 of the seed does not match the published commitment")
    if entry_list_hash(entrants) != list_hash_hex:
        problems.append("SHA-256 of the entry list does not match the published entry list hash")
    drawn = [(w.prize, w.entrant) for w in pick_winners(
        seed, entrants, prizes, one_prize_per_member=one_prize_per_member)]
    if drawn != list(winners):
        problems.append("the winners recomputed from the seed and the entry list differ from "
                        "the published winners")
    return problems
