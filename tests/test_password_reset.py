"""A password reset link works once, even used from several tabs at once, and only the newest one
works: an earlier link dies when a newer one is sent or when the password changes in any way."""

from __future__ import annotations

import asyncio
import re
import time

from tests.helpers import alert_text, api_token, bearer, get_form, hidden_fields, login, submit

EMAIL = "pedro@pacifico.example"
INVALID = "Este enlace no es válido o ha expirado."
SAVED = "guardada"


async def reset_links(smtp, count: int, timeout: float = 10.0) -> list[str]:
    """The reset links mailed to ``EMAIL`` so far, oldest first, once there are ``count``."""
    deadline = time.monotonic() + timeout
    while True:
        links = [
            re.search(r"/password/reset\?token=\S+", message.get_content())[0]
            for message in smtp.to(EMAIL)
            if "restablezca" in str(message["Subject"])
        ]
        if len(links) >= count or time.monotonic() > deadline:
            assert len(links) == count, links
            return links
        await asyncio.sleep(0.05)


async def ask_for_link(client, smtp, count: int) -> str:
    await submit(client, "/password/forgot", {"email": EMAIL})
    return (await reset_links(smtp, count))[-1]


async def use_link(client, path: str, password: str) -> tuple[int, str]:
    """Open the link and, when it shows the form, choose ``password``: the last answer's status and message."""
    resp = await client.get(path)
    if resp.status != 200:
        return resp.status, alert_text(await resp.text())
    hidden = hidden_fields(await resp.text())
    token = path.partition("token=")[2]
    data = {**hidden, "token": token, "new_password": password, "new_password_confirm": password}
    resp = await client.post("/password/reset", data=data)
    return resp.status, alert_text(await resp.text())


async def test_one_link_used_four_times_at_once_sets_the_password_once(client, smtp):
    link = await ask_for_link(client, smtp, 1)
    page, hidden = await get_form(client, link)
    token = re.search(r'name="token" value="([^"]+)"', page)[1]
    passwords = [f"Oceano2026x{n}" for n in range(4)]

    async def post(password: str):
        data = {**hidden, "token": token, "new_password": password, "new_password_confirm": password}
        resp = await client.post("/password/reset", data=data)
        return resp.status, alert_text(await resp.text())

    answers = await asyncio.gather(*(post(p) for p in passwords))
    winners = [p for p, (status, text) in zip(passwords, answers, strict=True) if status == 200 and SAVED in text]
    assert len(winners) == 1, answers
    assert sorted(answers)[1:] == [(400, INVALID)] * 3
    await login(client, "pacifico", winners[0])


async def test_an_earlier_link_dies_when_a_newer_one_is_sent(client, smtp):
    first = await ask_for_link(client, smtp, 1)
    second = await ask_for_link(client, smtp, 2)
    assert await use_link(client, first, "Oceano2026xyz") == (400, INVALID)
    status, text = await use_link(client, second, "Oceano2026xyz")
    assert status == 200 and SAVED in text


async def test_a_link_dies_when_the_password_is_changed_on_the_page(client, smtp):
    link = await ask_for_link(client, smtp, 1)
    await login(client, "pacifico")
    resp = await submit(
        client,
        "/password",
        {"current_password": "demo2026pass", "new_password": "Cambio2026abc", "new_password_confirm": "Cambio2026abc"},
    )
    assert resp.status == 200, await resp.text()
    assert await use_link(client, link, "Intruso2026xyz") == (400, INVALID)


async def test_a_link_dies_when_the_password_is_changed_through_the_api(client, smtp):
    link = await ask_for_link(client, smtp, 1)
    token = await api_token(client, "pacifico")
    body = {
        "current_password": "demo2026pass",
        "new_password": "Cambio2026abc",
        "new_password_confirm": "Cambio2026abc",
    }
    resp = await client.post("/api/v1/password", json=body, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert await use_link(client, link, "Intruso2026xyz") == (400, INVALID)
