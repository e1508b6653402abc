"""Partner webhooks (issue 13, docs/decisions/030-webhooks.md, docs/webhooks.md).

A partner subscribes a URL to event types; the worker (``gateway.worker``) turns each of that
partner's events into one delivery per matching subscription and POSTs it following the Standard
Webhooks specification (https://www.standardwebhooks.com): headers ``webhook-id`` (the event's
stable id), ``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 under the
subscription's ``whsec_`` secret, two signatures for a day after a rotation). A partner only ever
receives its own events, and the payload names the member by the partner's own customer id.

* :mod:`gateway.webhooks.signing`: secrets and signatures (pure).
* :mod:`gateway.webhooks.subscriptions`: create, list, rotate, disable (validated input).
* :mod:`gateway.webhooks.payload`: what a partner is sent for an event (an allowlist).
* :mod:`gateway.webhooks.sender`: one HTTP attempt.
* :mod:`gateway.webhooks.deliveries`: a partner's deliveries, and replays."""

from __future__ import annotations

CONSUMER_PREFIX = "webhook:"


def consumer_of(subscription_id: str) -> str:
    """The delivery rows' ``consumer`` for one subscription."""
    return f"{CONSUMER_PREFIX}{subscription_id}"


def subscription_of(consumer: str) -> str | None:
    """The subscription id of a webhook consumer name; None for an in-process consumer."""
    return consumer[len(CONSUMER_PREFIX):] if consumer.startswith(CONSUMER_PREFIX) else None
