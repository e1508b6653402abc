"""The HTTP stack the gateway is served on: uvicorn with httptools' parser on uvloop's event loop,
with ``TCP_NODELAY`` set on every connection, whatever the workers.

Why this stack (issue 11): the pure-Python stack (h11's parser on asyncio's loop) spent more of
a small request's CPU in parsing and the loop than the bare Strawberry mutation spends in its
resolver; httptools and uvloop are C and keep the same semantics (uvicorn's own request-size,
keep-alive and error handling run over them). Both apps of every benchmark comparison
(``benchmarks/bare.py``) are served with the same :data:`LOOP` and :class:`NoDelayHTTPProtocol`.

Why ``TCP_NODELAY`` by hand: with ``--workers`` above 1 uvicorn binds the listening socket
itself (``socket.socket(AF_INET, SOCK_STREAM)``, protocol number 0) and hands it to each worker;
the loop sets ``TCP_NODELAY`` on accepted connections only when the socket says
``IPPROTO_TCP``, so with several workers Nagle's algorithm stayed on. A response written in two
pieces (headers, then body) then waited for the client's delayed ACK: ~40 ms per request on
loopback, which made two workers of the bare benchmark app about 6x slower than one (issue 11,
item 5: 357 req/s, p50 44 ms, against 2,060 req/s, p50 7.6 ms with one)."""

from __future__ import annotations

import asyncio
import socket
from importlib.metadata import version

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOOP = "uvloop"
"""uvicorn's ``loop`` setting: named, not ``auto``, so a missing uvloop stops start-up."""


class NoDelayHTTPProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def describe() -> str:
    """One line for the start banner: what actually serves (the tests read it)."""
    return (f"uvicorn {version('uvicorn')}, httptools {version('httptools')} parser, "
            f"uvloop {version('uvloop')} event loop, TCP_NODELAY")
