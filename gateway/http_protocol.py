"""uvicorn's HTTP protocol with ``TCP_NODELAY`` set on every connection, whatever the workers.

With ``--workers`` above 1 uvicorn binds the listening socket itself
(``socket.socket(AF_INET, SOCK_STREAM)``, protocol number 0) and hands it to each worker;
asyncio sets ``TCP_NODELAY`` on accepted connections only when the socket says ``IPPROTO_TCP``,
so with several workers Nagle's algorithm stayed on. A response written in two pieces (headers,
then body) then waited for the client's delayed ACK: ~40 ms per request on loopback, which made
two workers of the bare benchmark app about 6x slower than one (issue 11, item 5: 357 req/s,
p50 44 ms, against 2,060 req/s, p50 7.6 ms with one). One worker was never affected: there
asyncio creates the socket with ``IPPROTO_TCP``."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
