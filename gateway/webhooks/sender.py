"""One attempt to deliver one event to one subscription: build the body, sign it, POST it.

2xx is success; any other status, a timeout or a connection error is a failure the worker
retries, except ``410 Gone``: as Standard Webhooks asks, the subscription is disabled and the
delivery ends (dead, replayable). Redirects are not followed (a 3xx is a failure: the partner
fixes the URL). The response body is never read or stored; ``last_error`` is a short phrase
with no secret in it. ``timeout`` bounds the connect and each read (``socket`` semantics),
15 s by default (Standard Webhooks suggests 15 to 30 s; the worker's lease stays above it).
A ``429 Too Many Requests`` keeps its ``Retry-After`` header (seconds or an HTTP date): the
worker waits at least that long before the next attempt (``gateway.worker.backoff``)."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine

from gateway.core.clock import Clock
from gateway.db.uow import UnitOfWork
from gateway.members.secrets import reference_for
from gateway.outbox import Event
from gateway.webhooks import payload, subscriptions
from gateway.webhooks.signing import signature_header

TIMEOUT_S = 15.0
USER_AGENT = "coalition-gateway-webhooks/1"
GONE = 410
TOO_MANY = 429
MAX_RETRY_AFTER = 64  # characters of the header kept (a date is 29)


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    status: int | None  # the receiver's HTTP status, if it answered
    error: str | None  # why it failed, short
    final: bool = False  # no point retrying (the subscription is gone or disabled)
    retry_after: str | None = None  # a 429's Retry-After header, as sent (parsed by the worker)


def deliver(engine: Engine, clock: Clock, subscription_id: str, event: Event, *,
            timeout: float = TIMEOUT_S, private_networks: bool = True) -> Attempt:
    now = clock.now()
    # The pairwise reference may write its secret once: before the read transaction.
    reference = (reference_for(engine, clock, event.partner_id, event.member_id)
                 if event.partner_id is not None and event.member_id is not None else None)
    with UnitOfWork(engine, write=False) as uow:
        target = subscriptions.signing(uow.conn, subscription_id, now)
        customer = (payload.customer_of(uow.conn, event.partner_id, event.member_id)
                    if event.partner_id is not None and event.member_id is not None else None)
    if target is None or not target.active:
        return Attempt(False, None, "subscription disabled", final=True)
    body = payload.body_of(event, payload.data_for(event, customer_id=customer,
                                                   member_reference=reference))
    attempt = post(target.url, body, event.id, now, target.secrets, timeout=timeout,
                   private_networks=private_networks)
    if attempt.status == GONE:
        # Standard Webhooks: 410 means the endpoint wants nothing more. Disable the
        # subscription (the partner subscribes again when it wants events) and
        # end this delivery; the others pending for it end when their turn comes.
        with UnitOfWork(engine) as uow:
            subscriptions.disable_gone(uow.conn, subscription_id, now)
            uow.commit()
        return Attempt(False, GONE, "HTTP 410: the endpoint is gone; subscription disabled",
                       final=True)
    return attempt


def internal_host(host: str, port: int) -> bool:
    """Whether ``host`` resolves to any private, loopback, link-local or otherwise internal
    address (a partner's URL must not make the worker POST into the coalition's network)."""
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # unresolvable: the connection fails on its own
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0])
        if (address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified):
            return True
    return False


def post(url: str, body: bytes, webhook_id: str, now: datetime, secrets: tuple[str, ...], *,
         timeout: float, private_networks: bool = True) -> Attempt:
    """One POST. ``private_networks`` False (production): refuse a host that resolves to an
    internal address, checked just before connecting (a name re-pointed between the check and
    the connection is not caught: see decision 030)."""
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, body),
    }
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    if not private_networks and internal_host(host, port or (443 if parts.scheme == "https"
                                                             else 80)):
        return Attempt(False, None, "refused: the host resolves to a private address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        retry_after = response.getheader("retry-after") if status == TOO_MANY else None
    except TimeoutError:
        return Attempt(False, None, f"timed out after {timeout:g} s")
    except ssl.SSLError as exc:
        return Attempt(False, None, f"TLS error: {type(exc).__name__}")
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(False, None, f"connection failed: {type(exc).__name__}")
    finally:
        connection.close()
    if 200 <= status < 300:
        return Attempt(True, status, None)
    return Attempt(False, status, f"HTTP {status}",
                   retry_after=None if retry_after is None else retry_after[:MAX_RETRY_AFTER])
