"""Fixtures for the portal and authorization-code tests: the real application (harness), a
browser (httpx with a cookie jar, reading CSRF tokens from the pages it gets) and a member who
signed up through the real pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from tests.support import harness

BASE = "https://gateway.test"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class Browser:
    client: httpx.AsyncClient

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def submit(self, page_url: str, data: dict[str, str], *,
                     action: str | None = None) -> httpx.Response:
        """GET the page, then POST its form with the CSRF token the page carries."""
        page = await self.client.get(page_url)
        assert page.status_code == 200, page.text
        token = _CSRF.search(page.text)
        assert token is not None, page.text
        return await self.client.post(action or page_url, data={"csrf": token.group(1), **data})

    async def sign_up(self, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
        response = await self.submit("/portal/sign-up", {"email": email, "password": password})
        assert response.status_code == 303, response.text
        return response

    async def sign_in(self, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
        return await self.submit("/portal/sign-in", {"email": email, "password": password})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(harness.NOW)


@pytest.fixture
def gateway(tmp_path: Path, clock: FixedClock) -> Gateway:
    return harness.make_gateway(tmp_path, clock=clock)


def new_browser(gateway: Gateway) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gateway.app, client=("203.0.113.7", 50000))
    return httpx.AsyncClient(transport=transport, base_url=BASE)


@pytest.fixture
async def browser(gateway: Gateway) -> AsyncIterator[Browser]:
    async with new_browser(gateway) as client:
        yield Browser(client)
