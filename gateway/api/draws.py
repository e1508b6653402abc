"""Prize draws over GraphQL and the public proof page (decision 033, docs/draws.md).

Partner fields (scope ``offers:manage``, the partner's own draws only; another's is NOT_FOUND):
``createDraw``, ``closeDraw``, ``draws``, ``draw``. Member fields (scope ``member``):
``enterDraw`` (buy entries with points, under an idempotency key) and ``viewer.draws``.
``GET /draws/<id>/proof`` is public (no token): the JSON anyone checks the draw with."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import strawberry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.types import Info

from gateway.api import errors as e
from gateway.api.context import Context, Services
from gateway.api.results import answer, errors_of
from gateway.api.types import Money, MoneyInput
from gateway.api.view import rate_limited
from gateway.auth.scopes import Scope
from gateway.core.errors import InvalidInput, NotFound
from gateway.draws import entries, fairness, service
from gateway.draws.model import Draw as DomainDraw
from gateway.draws.model import DrawTerms, Prize
from gateway.limits import RateLimiter

PROOF_PATH = "/draws/{draw_id}/proof"
CACHED_PROOFS = 8


def proof_url(draw_id: str) -> str:
    return PROOF_PATH.replace("{draw_id}", draw_id)


@strawberry.enum(description="Open: taking entries in [opensAt, closesAt) and not closed yet.")
class DrawStatus(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@strawberry.type(description="A prize and how many of it are drawn.")
class DrawPrize:
    name: str
    quantity: int


@strawberry.input
class DrawPrizeInput:
    name: str
    quantity: int = 1


@strawberry.type(description="One prize slot's winner, by pseudonymous entrant id.")
class DrawWinner:
    position: int = strawberry.field(description="The prize slot, 0-based, in draw order.")
    prize: str
    entrant: str = strawberry.field(description="HMAC-SHA256 of the member id under the "
                                    "draw's own secret key (hex): names no one.")
    ticket: int = strawberry.field(description="The ticket index drawn among those remaining.")

    @staticmethod
    def of(w: fairness.Win) -> DrawWinner:
        return DrawWinner(position=w.position, prize=w.prize, entrant=w.entrant, ticket=w.ticket)


@strawberry.type(description="A prize draw: its terms, its commitment, and once closed the "
                 "revealed seed, the entry list's hash and the winners (docs/draws.md).")
class Draw:
    id: strawberry.ID
    name: str
    owner: str = strawberry.field(description="The owning partner's id, or 'coalition'.")
    opens_at: datetime
    closes_at: datetime
    status: DrawStatus
    prizes: list[DrawPrize]
    max_entries_per_member: int
    entries_per_purchase: int | None
    purchase_partners: list[str] | None = strawberry.field(
        description="Where purchases give entries; empty: every partner; null: none do.")
    min_spend: Money | None
    points_per_entry: int | None = strawberry.field(
        description="The price of one entry in points; null: entries are not for sale.")
    one_prize_per_member: bool
    algorithm: str
    commitment: str = strawberry.field(description="SHA-256 of the secret seed (hex), "
                                       "published when the draw was created.")
    seed: str | None = strawberry.field(description="The seed (hex), revealed at close.")
    entry_list_hash: str | None = strawberry.field(
        description="SHA-256 of the canonical entry list (hex), published at close.")
    closed_at: datetime | None
    proof_url: str = strawberry.field(description="The public JSON proof (no token needed).")

    @staticmethod
    def fields_of(d: DomainDraw) -> dict[str, object]:
        return dict(
            id=strawberry.ID(d.id), name=d.name, owner=d.owner_partner_id or "coalition",
            opens_at=d.opens_at, closes_at=d.closes_at, status=DrawStatus(d.status),
            prizes=[DrawPrize(name=p.name, quantity=p.quantity) for p in d.prizes],
            max_entries_per_member=d.max_entries_per_member,
            entries_per_purchase=d.entries_per_purchase,
            purchase_partners=None if d.purchase_partners is None else list(d.purchase_partners),
            min_spend=None if d.min_spend is None else Money.of(d.min_spend),
            points_per_entry=d.points_per_entry, one_prize_per_member=d.one_prize_per_member,
            algorithm=fairness.ALGORITHM, commitment=d.commitment, seed=d.seed,
            entry_list_hash=d.entry_list_hash, closed_at=d.closed_at,
            proof_url=proof_url(d.id))


@strawberry.type(description="One of your draws, with its entries so far (frozen at close).")
class PartnerDraw(Draw):
    entries: int = strawberry.field(description="Entries in all.")
    entrants: int = strawberry.field(description="Members with at least one entry.")
    winners: list[DrawWinner] = strawberry.field(description="Empty until closed.")


@strawberry.type(description="A draw as the signed-in member sees it.")
class MemberDraw(Draw):
    my_entries: int = strawberry.field(description="Your entries (frozen at close).")
    my_entrant_id: str = strawberry.field(
        description="Your pseudonymous id in this draw's published entry list: find yourself "
        "there without anyone else learning who you are.")
    winners: list[DrawWinner] = strawberry.field(description="Empty until closed.")
    won: list[str] = strawberry.field(description="The prizes you won (empty: none, or not "
                                      "drawn yet).")


def partner_draw(s: service.DrawSummary, winners: tuple[fairness.Win, ...] = ()) -> PartnerDraw:
    return PartnerDraw(**Draw.fields_of(s.draw), entries=s.entries,  # type: ignore[arg-type]
                       entrants=s.entrants, winners=[DrawWinner.of(w) for w in winners])


def member_draw(v: service.MemberDraw) -> MemberDraw:
    return MemberDraw(**Draw.fields_of(v.draw), my_entries=v.entries,  # type: ignore[arg-type]
                      my_entrant_id=v.entrant, winners=[DrawWinner.of(w) for w in v.winners],
                      won=list(v.won))


@strawberry.input(description="A draw's terms. Entries come from your purchases "
                  "(entriesPerPurchase, minSpend), are sold for points (pointsPerEntry), or both.")
class CreateDrawInput:
    name: str
    opens_at: datetime = strawberry.field(description="Not in the past: the commitment is "
                                          "published before entries open.")
    closes_at: datetime
    prizes: list[DrawPrizeInput] = strawberry.field(description="In draw order; at most 100 "
                                                    "in all.")
    max_entries_per_member: int
    entries_per_purchase: int | None = None
    min_spend: MoneyInput | None = None
    points_per_entry: int | None = None
    one_prize_per_member: bool = True

    def to_terms(self) -> DrawTerms:
        return DrawTerms(
            name=self.name, opens_at=self.opens_at, closes_at=self.closes_at,
            prizes=tuple(Prize(p.name, p.quantity) for p in self.prizes),
            max_entries_per_member=self.max_entries_per_member,
            entries_per_purchase=self.entries_per_purchase,
            min_spend=None if self.min_spend is None else self.min_spend.to_domain("minSpend"),
            points_per_entry=self.points_per_entry,
            one_prize_per_member=self.one_prize_per_member)


@strawberry.type
class CreateDrawSuccess:
    draw: PartnerDraw


@strawberry.type
class CloseDrawSuccess:
    draw: PartnerDraw


@strawberry.type
class DrawList:
    draws: list[PartnerDraw]


@strawberry.type
class EnterDrawSuccess:
    operation_id: strawberry.ID
    draw_id: strawberry.ID
    entries: int = strawberry.field(description="Entries bought by this call.")
    total_entries: int = strawberry.field(description="Your entries in the draw now.")
    points_spent: int
    available: int = strawberry.field(description="Your available points after.")
    recorded_at: datetime


_MANAGE = e.InvalidInputError | e.NotFoundError | e.ForbiddenError | e.RateLimitedError
CreateDrawResult = Annotated[CreateDrawSuccess | _MANAGE, strawberry.union("CreateDrawResult")]
CloseDrawResult = Annotated[CloseDrawSuccess | e.DrawStillOpenError | _MANAGE,
                            strawberry.union("CloseDrawResult")]
DrawsResult = Annotated[DrawList | _MANAGE, strawberry.union("DrawsResult")]
DrawResult = Annotated[PartnerDraw | _MANAGE, strawberry.union("DrawResult")]
EnterDrawResult = Annotated[
    EnterDrawSuccess | e.DrawClosedError | e.DrawNotOpenError | e.DrawEntryLimitError
    | e.InsufficientPointsError | e.IdempotencyKeyReusedError | e.InvalidAmountError
    | e.RuleNotInForceError | e.UnknownMemberError | _MANAGE,
    strawberry.union("EnterDrawResult")]


def _created(s: Services, partner_id: str, terms: DrawTerms, actor: str) -> PartnerDraw:
    made = service.create_draw(s.engine, s.rules, s.clock.now(), partner_id, terms, actor)
    return partner_draw(service.DrawSummary(made, 0, 0))


def _closed(s: Services, partner_id: str, draw_id: str) -> PartnerDraw:
    done = service.close_draw(s.engine, s.clock.now(), draw_id, partner_id)
    return partner_draw(service.DrawSummary(done.draw, sum(x.entries for x in done.entrants),
                                            len(done.entrants)), done.winners)


def _shown(s: Services, partner_id: str, draw_id: str) -> PartnerDraw:
    found = service.show_draw(s.engine, draw_id, partner_id)
    wins = (service.winners_of(s.engine, draw_id, partner_id)
            if found.draw.status == "closed" else ())
    return partner_draw(found, wins)


def _listed(s: Services, partner_id: str, first: int) -> DrawList:
    if not 1 <= first <= service.MAX_LIST:
        raise InvalidInput(f"first must be between 1 and {service.MAX_LIST}", field="first")
    return DrawList(draws=[partner_draw(x) for x in service.list_draws(s.engine, partner_id,
                                                                        first)])


@strawberry.type
class DrawQueries:
    @strawberry.field(description="Your prize draws, newest first, with their entries so far. "
                      "Scope: offers:manage.")
    async def draws(self, info: Info[Context, None], first: int = 20) -> DrawsResult:
        c = info.context

        async def run() -> DrawList:
            return await c.run(_listed, c.services, c.partner_id, first)

        result: DrawsResult = await answer(c, errors_of(DrawsResult), Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.field(description="One of your prize draws. Scope: offers:manage.")
    async def draw(self, info: Info[Context, None], id: strawberry.ID) -> DrawResult:
        c = info.context

        async def run() -> PartnerDraw:
            return await c.run(_shown, c.services, c.partner_id, str(id))

        result: DrawResult = await answer(c, errors_of(DrawResult), Scope.OFFERS_MANAGE, run)
        return result


@strawberry.type
class DrawMutations:
    @strawberry.mutation(description="Create a prize draw: its seed's commitment is public "
                         "from now on. Scope: offers:manage.")
    async def create_draw(self, info: Info[Context, None],
                          input: CreateDrawInput) -> CreateDrawResult:
        c = info.context

        async def run() -> CreateDrawSuccess:
            terms = input.to_terms()
            made = await c.run(_created, c.services, c.partner_id, terms,
                               f"client:{c.principal.client_id}")
            return CreateDrawSuccess(draw=made)

        result: CreateDrawResult = await answer(c, errors_of(CreateDrawResult),
                                                Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="Close one of your draws (at or after closesAt): freeze "
                         "the entry list, draw the winners, reveal the seed. Closing again "
                         "answers the same result. Scope: offers:manage.")
    async def close_draw(self, info: Info[Context, None],
                         draw_id: strawberry.ID) -> CloseDrawResult:
        c = info.context

        async def run() -> CloseDrawSuccess:
            return CloseDrawSuccess(draw=await c.run(_closed, c.services, c.partner_id,
                                                     str(draw_id)))

        result: CloseDrawResult = await answer(c, errors_of(CloseDrawResult),
                                               Scope.OFFERS_MANAGE, run)
        return result

    @strawberry.mutation(description="Buy entries in an open draw with your points (the draw's "
                         "price each), under your idempotency key. Scope: member.")
    async def enter_draw(self, info: Info[Context, None], draw_id: strawberry.ID, entries: int,
                         idempotency_key: str) -> EnterDrawResult:
        c = info.context

        async def run() -> EnterDrawSuccess:
            mid = c.member_id
            done = await c.run(_enter, c.services, mid, str(draw_id), entries, idempotency_key)
            return done

        result: EnterDrawResult = await answer(c, errors_of(EnterDrawResult), Scope.MEMBER, run)
        return result


def _enter(s: Services, member_id: str, draw_id: str, count: int, key: str) -> EnterDrawSuccess:
    d = entries.enter_draw(s.ledger, member_id, draw_id, count, key)
    return EnterDrawSuccess(operation_id=strawberry.ID(d.operation_id),
                            draw_id=strawberry.ID(d.draw_id), entries=d.entries,
                            total_entries=d.total_entries, points_spent=d.points,
                            available=d.available, recorded_at=d.recorded_at)


async def viewer_draws(c: Context, member_id: str) -> list[MemberDraw]:
    found = await c.run(service.member_draws, c.services.engine, member_id,
                        c.services.clock.now())
    return [member_draw(v) for v in found]


def proof_route(services: Services, limiter: RateLimiter,
                on_rate_limited: Callable[[str], None] | None = None) -> Route:
    """``GET /draws/<id>/proof``: public, no token, so charged to the caller's address on the
    shared limiter. The draw's primary key and its own frozen rows only; 404 (JSON) for a draw
    that does not exist. A closed draw's proof never changes: the last few are kept encoded
    (a large draw's is megabytes and most of a second to build)."""
    closed: OrderedDict[str, bytes] = OrderedDict()

    async def page(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        refused = rate_limited(limiter, f"proof:{address}", on_rate_limited)
        if refused is not None:
            return refused
        draw_id = str(request.path_params["draw_id"])
        body = closed.get(draw_id)
        if body is None:
            try:
                found = await run_in_threadpool(service.proof, services.engine, draw_id)
            except NotFound:
                return JSONResponse({"error": "NOT_FOUND", "draw_id": draw_id}, 404)
            body = json.dumps(found, separators=(",", ":")).encode()
            if found["status"] == "closed":
                closed[draw_id] = body
                while len(closed) > CACHED_PROOFS:
                    closed.popitem(last=False)
        else:
            closed.move_to_end(draw_id)
        return Response(body, media_type="application/json",
                        headers={"Cache-Control": "public, max-age=60"})

    return Route(PROOF_PATH, page, methods=["GET"])
