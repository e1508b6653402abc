"""The baseline app: one Strawberry mutation returning a constant, nothing else.

Same stack as the gateway (Starlette, Strawberry's ASGI view, uvicorn with httptools on uvloop,
same worker count) and the same parser and validation caches, so the ratio earnPoints / bare
measures what the gateway adds: the JWT, the rules, the double-entry write and its transaction.

    .venv/bin/python -m benchmarks.bare --port 8100 --workers 1
"""

from __future__ import annotations

import argparse

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from gateway.http_protocol import LOOP, NoDelayHTTPProtocol


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


@strawberry.type
class EarnSuccess:
    points: int


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def earn(self, customer_id: strawberry.ID, idempotency_key: str) -> EarnSuccess:
        return EarnSuccess(points=10)


schema = strawberry.Schema(query=Query, mutation=Mutation,
                           extensions=[lambda: ParserCache(maxsize=1024),
                                       lambda: ValidationCache(maxsize=1024)])


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/graphql", GraphQL(schema, graphql_ide=None),
                              methods=["POST"]),
                        Route("/healthz", healthz)])

BODY = ('{"query": "mutation Earn($c: ID!, $k: String!) { earn(customerId: $c, '
        'idempotencyKey: $k) { __typename points } }", '
        '"variables": {"c": "@CUSTOMER@", "k": "@KEY@"}}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The gateway's own protocol class and loop (httptools on uvloop, TCP_NODELAY on every
    # connection), so both apps of a comparison run the same HTTP stack whatever the worker
    # count (gateway/http_protocol.py).
    uvicorn.run("benchmarks.bare:app", host="127.0.0.1", port=args.port, log_level="warning",
                workers=args.workers, http=NoDelayHTTPProtocol, loop=LOOP)


if __name__ == "__main__":
    main()
