"""Helpers for the phone tests: another phone (its own cookies) on the same running app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp


@contextlib.asynccontextmanager
async def another_phone(client) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser of its own (no cookies of ``client``'s) talking to the same server, paths as ``client`` takes."""
    jar = aiohttp.CookieJar(unsafe=True)  # the test server is an IP address: keep its cookies as a browser does
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")), cookie_jar=jar) as session:
        yield session
