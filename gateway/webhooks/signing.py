"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

A secret is ``whsec_`` followed by the base64 of 32 random bytes; the HMAC key is those bytes.
The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` (the exact body bytes sent);
``webhook-signature`` is a space-separated list of ``v1,<base64 HMAC-SHA256>``, one per secret
in force (the new one first; the previous one too during a rotation's overlap)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_in_force: Sequence[str], webhook_id: str, timestamp: int,
                     body: bytes) -> str:
    """``webhook-signature``: one signature per secret in force, space-separated."""
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_in_force)
