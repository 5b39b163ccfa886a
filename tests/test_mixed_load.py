"""Heavy portal work stays off the event loop, so the gate's redeems are not held up by it.

The app under test runs on the test's own event loop: whatever a handler does on the loop, a coroutine
of the test waits for too. The longest such wait while a portal request runs is what every redeem
arriving meanwhile would have waited.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from server.demo import DEMO_PASSWORD
from server.security import hash_password
from tests.helpers import api_token, bearer

TICK = 0.002


async def longest_stall(work: asyncio.Future) -> float:
    """The longest the event loop kept this coroutine waiting beyond its tick, until ``work`` is done."""
    longest, last = 0.0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        longest, last = max(longest, now - last - TICK), now
    return longest


async def hash_seconds() -> float:
    """How long one password hash takes on this machine now (off the loop)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        await asyncio.to_thread(hash_password, "a-password-to-time")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def test_a_new_password_is_hashed_without_holding_up_other_requests(client):
    token = await api_token(client, "andina")
    one_hash = await hash_seconds()
    new = "Otra-clave-2026-segura"
    body = {"current_password": DEMO_PASSWORD, "new_password": new, "new_password_confirm": new}

    change = asyncio.ensure_future(client.post("/api/v1/password", json=body, headers=bearer(token)))
    stall = await longest_stall(change)

    resp = await change
    assert resp.status == 200, await resp.text()
    assert stall < one_hash / 2, f"the event loop stopped {stall * 1000:.0f} ms (one hash takes {one_hash * 1000:.0f})"
