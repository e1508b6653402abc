"""Public identifiers: a short prefix naming the kind, then a time-ordered random part.

Time-ordered ids (monotonic ULIDs: 48 bits of wall-clock milliseconds, 80 random bits, Crockford
base32) sort by creation, which keeps history pagination a simple ``id < cursor`` walk on every
backend, and reveal no counts to partners the way sequential integers would. Within a process
ids are strictly increasing even inside one millisecond (the random part is incremented)."""

from __future__ import annotations

import secrets
import threading
import time
from typing import NewType

PartnerId = NewType("PartnerId", str)  # a partner's slug, e.g. "grocery"
MemberId = NewType("MemberId", str)  # the coalition's internal member id (never shown to partners)
CustomerId = NewType("CustomerId", str)  # a partner's own id for its customer
ClientId = NewType("ClientId", str)  # an OAuth client
OperationId = NewType("OperationId", str)  # one business operation in the ledger
HoldId = NewType("HoldId", str)  # an authorised redemption's hold
PurchaseId = NewType("PurchaseId", str)  # the partner's id for a sale
DocumentId = NewType("DocumentId", str)  # a trusted GraphQL document: sha256 of its text, hex

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
