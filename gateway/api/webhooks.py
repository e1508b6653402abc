"""Partner webhooks over GraphQL (scope ``webhooks:manage``, decision 030, docs/webhooks.md).

A partner subscribes an https URL to event types (``createWebhookSubscription``: the signing
secret is in that answer only), rotates its secret (the old one keeps signing for 24 hours),
disables a subscription, reads its deliveries and replays them (one by id, or every dead one in
a time window). Everything answers only the calling partner's own subscriptions: another
partner's id looks exactly like one that never existed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context
from gateway.api.results import answer, errors_of
from gateway.api.types import PageInfo
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput
from gateway.webhooks import deliveries as domain_deliveries
from gateway.webhooks import subscriptions as domain
from gateway.webhooks.subscriptions import EVENT_TYPES, MAX_SUBSCRIPTIONS


@strawberry.enum(description="Whether a subscription receives new events.")
class WebhookSubscriptionState(enum.Enum):
    ACTIVE = "active"
    DISABLED = "disabled"


@strawberry.enum(description="Where a delivery stands: PENDING (due, or waiting for its next "
                 "try), DELIVERED (your endpoint answered 2xx), DEAD (24 hours of failures; "
                 "replay it when your endpoint is back).")
class WebhookDeliveryState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@strawberry.type(description="Where your events are POSTed, signed with your secret.")
class WebhookSubscription:
    id: strawberry.ID
    url: str
    event_types: list[str]
    state: WebhookSubscriptionState
    created_at: datetime
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After a rotation: until then the previous secret signs too.")

    @staticmethod
    def of(s: domain.Subscription) -> WebhookSubscription:
        return WebhookSubscription(
            id=strawberry.ID(s.id), url=s.url, event_types=list(s.event_types),
            state=WebhookSubscriptionState(s.state), created_at=s.created_at,
            disabled_at=s.disabled_at, previous_secret_expires_at=s.previous_secret_until)


@strawberry.type(description="One event sent (or to be sent) to one of your subscriptions.")
class WebhookDelivery:
    id: strawberry.ID
    subscription_id: strawberry.ID
    event_id: strawberry.ID = strawberry.field(description="The webhook-id header.")
    event_type: str
    state: WebhookDeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None = strawberry.field(description="Your endpoint's last HTTP status.")
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @staticmethod
    def of(x: domain_deliveries.Delivery) -> WebhookDelivery:
        return WebhookDelivery(
            id=strawberry.ID(x.id), subscription_id=strawberry.ID(x.subscription_id),
            event_id=strawberry.ID(x.event_id), event_type=x.event_type,
            state=WebhookDeliveryState(x.state), attempts=x.attempts,
            next_attempt_at=x.next_attempt_at, last_status=x.last_status,
            last_error=x.last_error, delivered_at=x.delivered_at, created_at=x.created_at)


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type(description="Deliveries of one subscription, newest first.")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.type
class WebhookSubscriptionList:
    subscriptions: list[WebhookSubscription]


@strawberry.input
class CreateWebhookSubscriptionInput:
    url: str = strawberry.field(description="https (http only to localhost outside "
                                "production), at most 2,048 characters.")
    event_types: list[str] = strawberry.field(description=(
        f"Types ({', '.join(EVENT_TYPES)}), a family such as \"points.*\", or \"*\"."))


@strawberry.input(description="Every DEAD delivery of the subscription created in "
                  "[since, until).")
class ReplayWebhookDeliveriesInput:
    subscription_id: strawberry.ID
    since: datetime
    until: datetime


@strawberry.type
class CreateWebhookSubscriptionSuccess:
    subscription: WebhookSubscription
    secret: str = strawberry.field(description="whsec_...: shown in this answer only.")


@strawberry.type
class RotateWebhookSecretSuccess:
    subscription: WebhookSubscription
    secret: str = strawberry.field(description="The new whsec_...: shown in this answer only.")


@strawberry.type
class DisableWebhookSubscriptionSuccess:
    subscription: WebhookSubscription


@strawberry.type
class ReplayWebhookDeliverySuccess:
    delivery: WebhookDelivery


@strawberry.type
class ReplayWebhookDeliveriesSuccess:
    replayed: int
    more: bool = strawberry.field(description=(
        f"More than {domain_deliveries.MAX_REPLAY} matched: call again."))


_MANAGE = e.InvalidInputError | e.ForbiddenError
_OWN = e.NotFoundError | e.InvalidInputError | e.ForbiddenError
WebhookSubscriptionsResult = Annotated[WebhookSubscriptionList | _MANAGE,
                                       strawberry.union("WebhookSubscriptionsResult")]
WebhookDeliveriesResult = Annotated[WebhookDeliveryConnection | _OWN,
                                    strawberry.union("WebhookDeliveriesResult")]
CreateWebhookSubscriptionResult = Annotated[CreateWebhookSubscriptionSuccess | _MANAGE,
                                            strawberry.union("CreateWebhookSubscriptionResult")]
RotateWebhookSecretResult = Annotated[RotateWebhookSecretSuccess | _OWN,
                                      strawberry.union("RotateWebhookSecretResult")]
DisableWebhookSubscriptionResult = Annotated[
    DisableWebhookSubscriptionSuccess | _OWN, strawberry.union("DisableWebhookSubscriptionResult")]
ReplayWebhookDeliveryResult = Annotated[ReplayWebhookDeliverySuccess | _OWN,
                                        strawberry.union("ReplayWebhookDeliveryResult")]
ReplayWebhookDeliveriesResult = Annotated[ReplayWebhookDeliveriesSuccess | _OWN,
                                          strawberry.union("ReplayWebhookDeliveriesResult")]


def _state(value: WebhookDeliveryState | None) -> str | None:
    return None if value is None else value.value


@strawberry.type
class WebhookQueries:
    @strawberry.field(description=f"Your webhook subscriptions (at most {MAX_SUBSCRIPTIONS} "
                      "active). Scope: webhooks:manage.")
    async def webhook_subscriptions(self, info: Info[Context, None]
                                    ) -> WebhookSubscriptionsResult:
        c = info.context

        async def run() -> WebhookSubscriptionList:
            found = await c.run(domain.listed, c.services.engine, c.partner_id)
            return WebhookSubscriptionList(subscriptions=[WebhookSubscription.of(s)
                                                          for s in found])

        result: WebhookSubscriptionsResult = await answer(
            c, errors_of(WebhookSubscriptionsResult), Scope.WEBHOOKS_MANAGE, run)
        return result

    @strawberry.field(description="Deliveries of one of your subscriptions, newest first, "
                      "optionally of one state. Scope: webhooks:manage.")
    async def webhook_deliveries(self, info: Info[Context, None],
                                 subscription_id: strawberry.ID,
                                 state: WebhookDeliveryState | None = None, first: int = 20,
                                 after: str | None = None) -> WebhookDeliveriesResult:
        c = info.context

        async def run() -> WebhookDeliveryConnection:
            cap = c.services.settings.limits.max_page_size
            if not 1 <= first <= cap:
                raise InvalidInput(f"first must be between 1 and {cap}", field="first")
            page = await c.run(domain_deliveries.listed, c.services.engine, c.partner_id,
                               str(subscription_id), state=_state(state), first=first,
                               after=after)
            edges = [WebhookDeliveryEdge(cursor=domain_deliveries.cursor_of(x.id),
                                         node=WebhookDelivery.of(x)) for x in page.items]
            return WebhookDeliveryConnection(edges=edges, page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=page.end_cursor))

        result: WebhookDeliveriesResult = await answer(
            c, errors_of(WebhookDeliveriesResult), Scope.WEBHOOKS_MANAGE, run)
        return result


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Subscribe a URL to your events. The answer holds the "
                         "signing secret, once. Scope: webhooks:manage.")
    async def create_webhook_subscription(
            self, info: Info[Context, None],
            input: CreateWebhookSubscriptionInput) -> CreateWebhookSubscriptionResult:
        c = info.context

        async def run() -> CreateWebhookSubscriptionSuccess:
            made = await c.run(domain.create, c.services.engine, c.partner_id, input.url,
                               input.event_types, production=c.services.settings.production,
                               actor=f"client:{c.principal.client_id}",
                               now=c.services.clock.now())
            return CreateWebhookSubscriptionSuccess(
                subscription=WebhookSubscription.of(made.subscription), secret=made.secret)

        result: CreateWebhookSubscriptionResult = await answer(
            c, errors_of(CreateWebhookSubscriptionResult), Scope.WEBHOOKS_MANAGE, run)
        return result

    @strawberry.mutation(description="A new signing secret (in this answer only); the previous "
                         "one keeps signing beside it for 24 hours. Scope: webhooks:manage.")
    async def rotate_webhook_secret(self, info: Info[Context, None],
                                    subscription_id: strawberry.ID) -> RotateWebhookSecretResult:
        c = info.context

        async def run() -> RotateWebhookSecretSuccess:
            made = await c.run(domain.rotate, c.services.engine, c.partner_id,
                               str(subscription_id), now=c.services.clock.now())
            return RotateWebhookSecretSuccess(
                subscription=WebhookSubscription.of(made.subscription), secret=made.secret)

        result: RotateWebhookSecretResult = await answer(
            c, errors_of(RotateWebhookSecretResult), Scope.WEBHOOKS_MANAGE, run)
        return result

    @strawberry.mutation(description="Stop a subscription: no new deliveries; pending ones end "
                         "as dead. Scope: webhooks:manage.")
    async def disable_webhook_subscription(
            self, info: Info[Context, None],
            subscription_id: strawberry.ID) -> DisableWebhookSubscriptionResult:
        c = info.context

        async def run() -> DisableWebhookSubscriptionSuccess:
            found = await c.run(domain.disable, c.services.engine, c.partner_id,
                                str(subscription_id), now=c.services.clock.now())
            return DisableWebhookSubscriptionSuccess(subscription=WebhookSubscription.of(found))

        result: DisableWebhookSubscriptionResult = await answer(
            c, errors_of(DisableWebhookSubscriptionResult), Scope.WEBHOOKS_MANAGE, run)
        return result

    @strawberry.mutation(description="Send one delivery again now (same webhook-id), whatever "
                         "its state. Scope: webhooks:manage.")
    async def replay_webhook_delivery(self, info: Info[Context, None],
                                      id: strawberry.ID) -> ReplayWebhookDeliveryResult:
        c = info.context

        async def run() -> ReplayWebhookDeliverySuccess:
            found = await c.run(domain_deliveries.replay, c.services.engine, c.partner_id,
                                str(id), now=c.services.clock.now())
            return ReplayWebhookDeliverySuccess(delivery=WebhookDelivery.of(found))

        result: ReplayWebhookDeliveryResult = await answer(
            c, errors_of(ReplayWebhookDeliveryResult), Scope.WEBHOOKS_MANAGE, run)
        return result

    @strawberry.mutation(description="Send again every dead delivery of a subscription created "
                         f"in a window (at most {domain_deliveries.MAX_REPLAY} a call). "
                         "Scope: webhooks:manage.")
    async def replay_webhook_deliveries(
            self, info: Info[Context, None],
            input: ReplayWebhookDeliveriesInput) -> ReplayWebhookDeliveriesResult:
        c = info.context

        async def run() -> ReplayWebhookDeliveriesSuccess:
            done = await c.run(domain_deliveries.replay_dead, c.services.engine, c.partner_id,
                               str(input.subscription_id), since=input.since,
                               until=input.until, now=c.services.clock.now())
            return ReplayWebhookDeliveriesSuccess(replayed=done.count, more=done.more)

        result: ReplayWebhookDeliveriesResult = await answer(
            c, errors_of(ReplayWebhookDeliveriesResult), Scope.WEBHOOKS_MANAGE, run)
        return result
