"""A partner's webhook subscriptions: create (the secret shown once), list, rotate the secret,
disable. Every function takes the calling partner and treats another partner's subscription as
missing (``NotFound``), so one partner can neither see nor touch another's.

Input is checked here, each refusal an ``InvalidInput`` naming the field: the URL must be
``https`` (plain ``http`` only to localhost, and only outside production), without credentials,
at most 2,048 characters; in production a literal private, loopback or link-local address is
refused (the worker would otherwise POST into the coalition's own network). Event types are
known types, ``family.*`` of a known family, or ``*``."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, func, insert, select, update

from gateway.core.errors import InvalidInput, NotFound
from gateway.core.ids import new_id
from gateway.db.tables import webhook_subscriptions as subs
from gateway.db.uow import UnitOfWork
from gateway.outbox import OPERATION_EVENTS
from gateway.webhooks.signing import new_secret

MAX_SUBSCRIPTIONS = 10  # active ones per partner: the listing and the fan-out stay bounded
MAX_URL = 2048
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret keeps signing this long
# What a partner may subscribe to: its own ledger operations, its links, its campaigns. The
# engagement packages add theirs (challenge.completed, ...) here when they publish them.
EVENT_TYPES: tuple[str, ...] = tuple(sorted(
    {*OPERATION_EVENTS.values(), "member.linked", "campaign.published", "coupon.assigned",
     "challenge.published", "challenge.completed", "challenge.undone", "draw.closed"}))
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    partner_id: str
    url: str
    event_types: tuple[str, ...]
    state: str  # active | disabled
    created_at: datetime
    disabled_at: datetime | None
    previous_secret_until: datetime | None  # while the old secret still signs


@dataclass(frozen=True, slots=True)
class WithSecret:
    """A subscription and its new secret: shown in this answer only."""

    subscription: Subscription
    secret: str


def check_url(url: str, *, production: bool) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInput(f"url must be 1 to {MAX_URL} characters", field="url")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a bad port raises ValueError
    except ValueError:
        raise InvalidInput("url is not a valid URL", field="url") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput("url must be an absolute https URL", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry credentials", field="url")
    local = host.lower() in LOCAL_HOSTS
    if parts.scheme == "http" and (production or not local):
        raise InvalidInput("url must use https (http only to localhost, outside production)",
                           field="url")
    if production and (local or _internal_address(host)):
        raise InvalidInput("url must not point into a private network", field="url")
    return url


def _internal_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: resolved by the worker (see docs/decisions/030)
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)


def check_event_types(event_types: Iterable[str]) -> tuple[str, ...]:
    found = sorted({t.strip() for t in event_types})
    if not found:
        raise InvalidInput("eventTypes must name at least one event type (or \"*\")",
                           field="eventTypes")
    families = {t.split(".", 1)[0] for t in EVENT_TYPES}
    for pattern in found:
        if pattern == "*" or pattern in EVENT_TYPES:
            continue
        if pattern.endswith(".*") and pattern[:-2] in families:
            continue
        raise InvalidInput(f"eventTypes: unknown event type {pattern[:64]!r}; known: "
                           f"{', '.join(EVENT_TYPES)}, a family such as points.*, or *",
                           field="eventTypes")
    return tuple(found)


def matches(patterns: Sequence[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _of(row: Any) -> Subscription:
    return Subscription(id=row.id, partner_id=row.partner_id, url=row.url,
                        event_types=tuple(json.loads(row.event_types)), state=row.state,
                        created_at=row.created_at, disabled_at=row.disabled_at,
                        previous_secret_until=row.previous_secret_until)


_COLUMNS = (subs.c.id, subs.c.partner_id, subs.c.url, subs.c.event_types, subs.c.state,
            subs.c.created_at, subs.c.disabled_at, subs.c.previous_secret_until)


def create(engine: Engine, partner_id: str, url: str, event_types: Iterable[str], *,
           production: bool, actor: str, now: datetime) -> WithSecret:
    url = check_url(url, production=production)
    types = check_event_types(event_types)
    secret = new_secret()
    with UnitOfWork(engine) as uow:
        # ix_webhook_subscriptions_partner: bounded by MAX_SUBSCRIPTIONS.
        active = uow.conn.execute(select(func.count()).select_from(subs).where(
            subs.c.partner_id == partner_id, subs.c.state == "active")).scalar_one()
        if active >= MAX_SUBSCRIPTIONS:
            raise InvalidInput(f"at most {MAX_SUBSCRIPTIONS} active subscriptions; disable "
                               "one first", field="url")
        subscription_id = new_id("whs")
        uow.conn.execute(insert(subs).values(
            id=subscription_id, partner_id=partner_id, url=url, event_types=json.dumps(types),
            secret=secret, previous_secret=None, previous_secret_until=None, state="active",
            created_at=now, created_by=actor[:128], disabled_at=None))
        found = _own(uow.conn, partner_id, subscription_id)
        uow.commit()
    return WithSecret(found, secret)


def listed(engine: Engine, partner_id: str) -> list[Subscription]:
    """The partner's subscriptions, active first, newest first (ix_webhook_subscriptions_partner;
    a partner has at most MAX_SUBSCRIPTIONS active ones, disabled ones are listed up to 100)."""
    with UnitOfWork(engine, write=False) as uow:
        rows = uow.conn.execute(select(*_COLUMNS).where(subs.c.partner_id == partner_id)
                                .order_by(subs.c.state, subs.c.id.desc()).limit(100)).all()
    return [_of(r) for r in rows]


def rotate(engine: Engine, partner_id: str, subscription_id: str, *,
           now: datetime) -> WithSecret:
    """A new secret; the current one becomes the previous and keeps signing for
    ``ROTATION_OVERLAP``. A second rotation while a previous secret is still in its overlap is
    refused (``InvalidInput`` on ``subscriptionId``, saying when it is allowed): there is one
    previous-secret slot, and filling it again would stop the older secret signing before the
    24 hours its receivers were promised (decision 030)."""
    secret = new_secret()
    with UnitOfWork(engine) as uow:
        found = _own(uow.conn, partner_id, subscription_id)
        if found.state != "active":
            raise InvalidInput("a disabled subscription has no secret to rotate",
                               field="subscriptionId")
        until = found.previous_secret_until
        if until is not None and until > now:
            raise InvalidInput("the previous secret still signs until "
                               f"{until.isoformat()}: rotate again after that (one rotation "
                               "per 24 hours)", field="subscriptionId")
        uow.conn.execute(update(subs).where(subs.c.id == found.id).values(
            previous_secret=subs.c.secret, previous_secret_until=now + ROTATION_OVERLAP,
            secret=secret))
        found = _own(uow.conn, partner_id, subscription_id)
        uow.commit()
    return WithSecret(found, secret)


def disable(engine: Engine, partner_id: str, subscription_id: str, *,
            now: datetime) -> Subscription:
    """No new deliveries; pending ones end as dead when their turn comes. Disabling twice
    answers the subscription as it is."""
    with UnitOfWork(engine) as uow:
        found = _own(uow.conn, partner_id, subscription_id)
        if found.state == "active":
            uow.conn.execute(update(subs).where(subs.c.id == found.id).values(
                state="disabled", disabled_at=now))
            found = _own(uow.conn, partner_id, subscription_id)
        uow.commit()
    return found


def disable_gone(conn: Connection, subscription_id: str, now: datetime) -> None:
    """The worker's: the endpoint answered 410 Gone (primary key; an active one only)."""
    conn.execute(update(subs).where(subs.c.id == subscription_id, subs.c.state == "active")
                 .values(state="disabled", disabled_at=now))


def _own(conn: Connection, partner_id: str, subscription_id: str) -> Subscription:
    row = conn.execute(select(*_COLUMNS).where(subs.c.id == str(subscription_id),
                                               subs.c.partner_id == partner_id)).one_or_none()
    if row is None:
        raise NotFound("no webhook subscription of yours has this id", field="subscriptionId")
    return _of(row)


def own(conn: Connection, partner_id: str, subscription_id: str) -> Subscription:
    """The partner's subscription, or ``NotFound`` (another partner's looks missing)."""
    return _own(conn, partner_id, subscription_id)


@dataclass(frozen=True, slots=True)
class Signing:
    """What the worker needs to send one delivery: where, and the secrets in force now."""

    url: str
    active: bool
    secrets: tuple[str, ...]


def signing(conn: Connection, subscription_id: str, now: datetime) -> Signing | None:
    row = conn.execute(select(subs.c.url, subs.c.state, subs.c.secret, subs.c.previous_secret,
                              subs.c.previous_secret_until)
                       .where(subs.c.id == subscription_id)).one_or_none()
    if row is None:
        return None
    in_force = [row.secret]
    if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now:
        in_force.append(row.previous_secret)
    return Signing(row.url, row.state == "active", tuple(in_force))
