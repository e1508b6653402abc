"""The member's consent as codes, in the portal: a one-time link code to give a brand, and the
rotating store code to show at a till.

The link code is made by a POST (it is a change: a new single-use code, 10 minutes) and shown
once with its expiry. The store code page issues a fresh code on every GET and shows it as a
QR (inline SVG drawn by segno, so no image request and nothing the CSP has to allow) and as
digits; a ``<meta http-equiv="refresh">`` reloads the page a few seconds before the code
expires, so the phone held up at the till always shows a live one."""

from __future__ import annotations

import segno
from starlette.requests import Request
from starlette.responses import Response

from gateway.members import consent
from gateway.members.codes import STORE_CODE_TTL
from gateway.portal.web import Page, Portal

REFRESH_BEFORE_S = 10  # reload this long before the code expires


def register(portal: Portal) -> None:
    engine, clock = portal.engine, portal.clock

    @portal.page("/link-code", "link_code.html", methods=("GET", "POST"))
    async def link_code(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        if request.method == "GET":
            return page.render()
        code = await page.run(consent.create_link_code, engine, clock, page.member_id)
        return page.render({"code": code})

    @portal.page("/store-code", "store_code.html")
    async def store_code(request: Request, page: Page) -> Response:
        assert page.member_id is not None
        code = await page.run(consent.issue_store_code, engine, clock, page.member_id)
        svg = await page.run(qr_svg, code.qr_text)
        refresh = max(5, int(STORE_CODE_TTL.total_seconds()) - REFRESH_BEFORE_S)
        return page.render({"code": code, "qr_svg": svg, "refresh_s": refresh})


def qr_svg(text: str) -> str:
    """The QR code for ``text`` as an inline ``<svg>`` element (no XML declaration)."""
    qr = segno.make(text, error="m")
    svg: str = qr.svg_inline(scale=4, dark="#000", light="#fff", title="Store code QR")
    return svg
