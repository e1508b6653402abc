"""Public identifiers: a short prefix naming the kind, then a time-ordered random part.

Time-ordered ids (monotonic ULIDs: 48 bits of wall-clock milliseconds, 80 random bits, Crockford
base32) sort by creation, which keeps history pagination a simple ``id < cursor`` walk on every
backend, and reveal no counts to partners the way sequential integers would. Within a process
ids are strictly increasing even inside one millisecond (the random part is incremented)."""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = 0


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
        if value <= _last:
            value = _last + 1
        _last = value
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(reversed(chars))}"
