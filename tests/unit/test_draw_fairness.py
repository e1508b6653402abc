"""The draw's fairness core (decision 033) on its own: the commitment is SHA-256 of the seed,
the canonical list is order-independent, the rejection bound is exact, the winners are a pure
function of (seed, list, prizes) pinned by a known answer, one prize per member unless the draw
says otherwise, and any tampering is named by ``check``."""

from __future__ import annotations

import hashlib
from collections import Counter

from gateway.draws import fairness
from gateway.draws.fairness import Entrant

SEED = bytes(range(32))
A, B, C = "a" * 64, "b" * 64, "c" * 64
LIST = [Entrant(B, 1), Entrant(A, 3), Entrant(C, 2)]
PRIZES = [("Bike", 1), ("Voucher", 2)]


def test_commitment_and_list_hash_are_sha256_of_the_documented_bytes() -> None:
    assert fairness.commitment(SEED) == hashlib.sha256(SEED).hexdigest()
    text = f"{A}:3\n{B}:1\n{C}:2\n".encode()
    assert fairness.canonical(LIST) == text
    assert fairness.entry_list_hash(LIST) == hashlib.sha256(text).hexdigest()
    assert fairness.entry_list_hash(list(reversed(LIST))) == fairness.entry_list_hash(LIST)


def test_entrant_ids_are_per_draw_hmacs() -> None:
    one, two = fairness.entrant_id(b"k" * 32, "mem_1"), fairness.entrant_id(b"j" * 32, "mem_1")
    assert len(one) == 64 and one != two and "mem_1" not in one


def test_winners_are_a_pure_function_pinned_by_a_known_answer() -> None:
    wins = fairness.pick_winners(SEED, LIST, PRIZES, one_prize_per_member=True)
    again = fairness.pick_winners(SEED, list(reversed(LIST)), PRIZES, one_prize_per_member=True)
    assert wins == again
    # The known answer: if this changes, every published draw's proof stops verifying.
    assert [(w.prize, w.entrant[0], w.ticket) for w in wins] == KNOWN
    assert len({w.entrant for w in wins}) == 3


# Tickets a,a,a,b,c,c: ticket 1 (a) wins the bike; a's tickets leave (b,c,c); ticket 2 (c)
# wins a voucher; then b's ticket 0 the other.
KNOWN = [("Bike", "a", 1), ("Voucher", "c", 2), ("Voucher", "b", 0)]


def test_several_prizes_per_member_remove_one_ticket_only() -> None:
    wins = fairness.pick_winners(SEED, [Entrant(A, 2)], [("Mug", 3)],
                                 one_prize_per_member=False)
    assert [(w.entrant, w.ticket) for w in wins] == [(A, 1), (A, 0)]
    assert len(wins) == 2  # two tickets, three mugs: one mug is not awarded
    once = fairness.pick_winners(SEED, [Entrant(A, 2)], [("Mug", 3)],
                                 one_prize_per_member=True)
    assert len(once) == 1


def test_no_entries_no_winners() -> None:
    assert fairness.pick_winners(SEED, [], PRIZES, one_prize_per_member=True) == []


def test_rejection_keeps_every_ticket_equally_likely() -> None:
    """With 3 tickets, 2**256 mod 3 = 1: exactly one value of h (2**256 - 1) is rejected. Over
    3,000 seeds every ticket wins about a third of the time."""
    assert (2**256) % 3 == 1
    counts: Counter[int] = Counter()
    for n in range(3000):
        seed = hashlib.sha256(n.to_bytes(4, "big")).digest()
        [win] = fairness.pick_winners(seed, [Entrant(A, 1), Entrant(B, 1), Entrant(C, 1)],
                                      [("Bike", 1)], one_prize_per_member=True)
        counts[win.ticket] += 1
    assert set(counts) == {0, 1, 2}
    assert all(900 < c < 1100 for c in counts.values()), counts


def test_check_names_each_kind_of_tampering() -> None:
    wins = [(w.prize, w.entrant) for w in fairness.pick_winners(
        SEED, LIST, PRIZES, one_prize_per_member=True)]
    good = (SEED.hex(), fairness.commitment(SEED), fairness.entry_list_hash(LIST))
    assert fairness.check(*good, LIST, PRIZES, wins, one_prize_per_member=True) == []
    other = bytes(32)
    assert fairness.check(other.hex(), *good[1:], LIST, PRIZES, wins,
                          one_prize_per_member=True)[0].startswith("SHA-256 of the seed")
    padded = [*LIST[:2], Entrant(C, 9)]
    assert "entry list" in fairness.check(*good, padded, PRIZES, wins,
                                          one_prize_per_member=True)[0]
    swapped = [(wins[0][0], wins[1][1]), (wins[1][0], wins[0][1]), wins[2]]
    assert fairness.check(*good, LIST, PRIZES, swapped, one_prize_per_member=True) == [
        "the winners recomputed from the seed and the entry list differ from the published "
        "winners"]


def naive(seed: bytes, entrants: list[Entrant], prizes: list[tuple[str, int]],
          one_each: bool) -> list[tuple[str, str, int]]:
    """The algorithm as docs/draws.md states it, on the expanded ticket list."""
    listed = sorted(entrants, key=lambda e: e.entrant)
    list_hash = hashlib.sha256("".join(f"{e.entrant}:{e.entries}\n" for e in listed)
                               .encode()).digest()
    tickets = [e.entrant for e in listed for _ in range(e.entries)]
    won, k = [], 0
    for prize in [name for name, q in prizes for _ in range(q)]:
        if not tickets:
            break
        m = len(tickets)
        while True:
            h = int.from_bytes(hashlib.sha256(seed + list_hash + k.to_bytes(8, "big")).digest(),
                               "big")
            k += 1
            if h < 2**256 - 2**256 % m:
                break
        winner = tickets[h % m]
        won.append((prize, winner, h % m))
        tickets = [t for t in tickets if t != winner] if one_each else (
            tickets[:h % m] + tickets[h % m + 1:])
    return won


def test_the_fenwick_tickets_draw_exactly_as_the_expanded_list() -> None:
    """200 random draws (up to 40 entrants of up to 6 entries, up to 30 prizes), both modes."""
    import random

    rng = random.Random(33)
    for n in range(200):
        entrants = [Entrant(f"{rng.getrandbits(256):064x}", rng.randint(1, 6))
                    for _ in range(rng.randint(0, 40))]
        prizes = [(f"p{i}", rng.randint(1, 5)) for i in range(rng.randint(1, 6))]
        seed = hashlib.sha256(n.to_bytes(4, "big")).digest()
        for one_each in (True, False):
            fast = [(w.prize, w.entrant, w.ticket) for w in fairness.pick_winners(
                seed, entrants, prizes, one_prize_per_member=one_each)]
            assert fast == naive(seed, entrants, prizes, one_each)
