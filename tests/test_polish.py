"""Everyday polish a person notices: one date style in the reader's language and the terminal's time,
helpdesk numbers stamped in that time, menu entries and page titles that cannot be confused, and
destructive actions that are asked for first and answered with a redirect (Back and Refresh are safe).
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.app import create_app
from server.demo import install_demo
from tests.gate_support import enrol_kiosk
from tests.helpdesk_support import ANDINA, PACIFICO_SERIAL, new_serial, open_ticket, serial_id, token_as
from tests.helpers import alert_text, db_rows, get_form, login

ZONE = "America/Guayaquil"  # UTC-5 all year


@pytest.fixture
async def gye(config, aiohttp_client):
    app = create_app(replace(config, timezone=ZONE))
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def title_of(page: str) -> str:
    found = re.search(r"<title>([^<]*)</title>", page)
    assert found, page
    return html.unescape(found[1])


def menu_of(page: str) -> list[str]:
    menu = re.search(r'<nav class="sidemenu".*?</nav>', page, re.S)
    return [html.unescape(label) for label in re.findall(r"<a [^>]*>([^<]+)</a>", menu[0])] if menu else []


async def test_a_time_reads_the_same_way_on_every_page_in_the_readers_language(gye, config):
    machine, serial = db_rows(config, "SELECT id, serial_id FROM machines WHERE fingerprint = 'FP-A1-0001'")[0]
    # 04:42 UTC on the 6th is 23:42 on the 5th in Guayaquil.
    db_rows(config, "UPDATE machines SET activated_at = '2026-12-06T04:42:00+00:00' WHERE id = ?", (machine,))
    await login(gye, "andina", language="es", profile="Exportadora Andina S.A.")
    page = await (await gye.get(f"/licences/{serial}/machines/{machine}")).text()
    assert "<dd>5 dic 2026 23:42</dd>" in page and "-05" not in page and "2026-12-0" not in page
    await gye.get("/lang/en")
    assert "<dd>5 Dec 2026 23:42</dd>" in await (await gye.get(f"/licences/{serial}/machines/{machine}")).text()


async def test_helpdesk_times_carry_the_year_and_keep_their_relative_time(gye, config):
    andina = await token_as(gye, "andina", "customer")
    serial = await new_serial(gye, await token_as(gye, "admin"), config, ANDINA)
    ticket = await (await open_ticket(gye, andina, serial["policy_id"], "fechas@andina.example")).json()
    created = datetime.fromisoformat(ticket["created_at"]).astimezone(ZoneInfo(ZONE))
    await login(gye, "andina", language="es", profile="Exportadora Andina S.A.")
    page = await (await gye.get(f"/helpdesk/tickets/{ticket['id']}")).text()
    shown = f"{created.day} {('ene feb mar abr may jun jul ago sept oct nov dic'.split())[created.month - 1]} "
    assert re.search(rf"{shown}{created.year} {created:%H:%M} \(hace \d+ segundos?\)", html.unescape(page))


async def test_a_helpdesk_number_is_stamped_in_the_terminals_time_like_its_created_time(gye, config):
    andina = await token_as(gye, "andina", "customer")
    serial = await new_serial(gye, await token_as(gye, "admin"), config, ANDINA)
    resp = await open_ticket(gye, andina, serial["policy_id"], "numero@andina.example")
    assert resp.status == 201, await resp.text()
    ticket = await resp.json()
    stamp = datetime.strptime(ticket["number"].rsplit("_", 1)[1], "%d%m%Y%H%M%S")
    created = datetime.fromisoformat(ticket["created_at"])
    assert created.utcoffset() == timedelta(0)  # stored and sent in UTC, as every time
    assert stamp == created.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)


async def test_the_customer_menu_tells_gate_tickets_from_support_tickets(client):
    await login(client, "andina", language="es", profile="Exportadora Andina S.A.")
    page = await (await client.get("/helpdesk/tickets")).text()
    assert "Soporte — Mis tickets" in menu_of(page) and "Mis tickets" not in menu_of(page)
    assert title_of(page) == "Soporte — Mis tickets · Portgate"
    await client.get("/lang/en")
    page = await (await client.get("/helpdesk/tickets")).text()
    assert "Support tickets" in menu_of(page) and "My tickets" not in menu_of(page)


async def test_every_page_has_a_title_that_names_it(client, config):
    assert title_of(await (await client.get("/password/forgot")).text()) != "Portgate · Portgate"
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, await token_as(client, "admin"), config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "titulo@andina.example")).json()
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page = await (await client.get(f"/helpdesk/tickets/{ticket['id']}")).text()
    assert title_of(page) == f"Support ticket {ticket['number']} · Portgate"
    page = await (await client.get(f"/licences/{serial['id']}")).text()
    assert title_of(page) == f"Licence {serial['serial']} · Portgate"


async def test_deactivating_a_kiosks_machine_is_asked_first_and_says_what_will_happen(client, config):
    kiosk = await enrol_kiosk(client, "Garita Confirmada")
    machine, serial = db_rows(config, "SELECT id, serial_id FROM machines WHERE kiosk_id = ?", (kiosk["kiosk_id"],))[0]
    await login(client, "supervisor", language="es")
    page = await (await client.get(f"/licences/{serial}")).text()
    assert f'action="/licences/{serial}/machines/{machine}/deactivate"' not in page  # no one-click button
    assert f'href="/licences/{serial}/machines/{machine}/deactivate"' in page
    page, hidden = await get_form(client, f"/licences/{serial}/machines/{machine}/deactivate")
    assert "es un quiosco de garita: se revoca de inmediato" in html.unescape(page).lower()
    assert db_rows(config, "SELECT active FROM machines WHERE id = ?", (machine,)) == [(1,)]  # asking changes nothing
    resp = await client.post(f"/licences/{serial}/machines/{machine}/deactivate", data=hidden, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, f"/licences/{serial}")
    page = await (await client.get(f"/licences/{serial}")).text()
    assert alert_text(page) == "Se desactivó el equipo Garita Confirmada; su cupo quedó libre."
    assert alert_text(await (await client.get(f"/licences/{serial}")).text()) == ""  # Refresh: shown once
    assert db_rows(config, "SELECT active FROM machines WHERE id = ?", (machine,)) == [(0,)]


async def test_closing_and_cancelling_a_service_ticket_are_asked_first(client, config, smtp):
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, await token_as(client, "admin"), config, ANDINA)
    first = await (await open_ticket(client, andina, serial["policy_id"], "cierre@andina.example")).json()
    second = await (await open_ticket(client, andina, serial["policy_id"], "anula@andina.example")).json()
    await login(client, "mesa", language="en")
    page = await (await client.get(f"/helpdesk/tickets/{first['id']}")).text()
    assert not re.search(r'action="[^"]*/(close|cancel)"', page)
    page, hidden = await get_form(client, f"/helpdesk/tickets/{first['id']}/close")
    assert "cierre@andina.example gets an e-mail inviting the customer to rate it" in html.unescape(page)
    page, hidden = await get_form(client, f"/helpdesk/tickets/{second['id']}/cancel")
    assert "the customer is not told by e-mail" in page
    statuses = "SELECT status FROM service_tickets WHERE id IN (?, ?) ORDER BY id"
    assert db_rows(config, statuses, (first["id"], second["id"])) == [("open",), ("open",)]
    closed = "is closed; the customer was invited by e-mail to rate it"
    for ticket, action, said in ((first, "close", closed), (second, "cancel", "is cancelled")):
        url = f"/helpdesk/tickets/{ticket['id']}"
        resp = await client.post(f"{url}/{action}", data=hidden, allow_redirects=False)
        assert (resp.status, resp.headers["Location"]) == (303, url)
        assert alert_text(await (await client.get(url)).text()) == f"Ticket {ticket['number']} {said}."
    assert db_rows(config, statuses, (first["id"], second["id"])) == [("closed",), ("cancelled",)]


async def test_every_form_post_of_the_helpdesk_and_licence_pages_answers_a_redirect(client, config):
    """So Back works and Refresh never sends the form again: each result is shown once after a 303."""
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, await token_as(client, "admin"), config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "prg@andina.example")).json()
    url = f"/helpdesk/tickets/{ticket['id']}"

    async def posted(path: str, form: dict[str, str], location: str, message: str) -> None:
        _page, hidden = await get_form(client, location)
        resp = await client.post(path, data={**hidden, **form}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"].split("#")[0] == location
        assert alert_text(await (await client.get(location)).text()) == message
        assert alert_text(await (await client.get(location)).text()) == ""

    await login(client, "mesa", language="en")
    await posted(f"{url}/assign", {}, url, f"Ticket {ticket['number']} is assigned to you.")
    await posted(f"{url}/reply", {"body": "Reinicie el equipo."}, url, "Your reply was sent.")
    closed = f"Ticket {ticket['number']} is closed; the customer was invited by e-mail to rate it."
    await posted(f"{url}/close", {}, url, closed)
    client.session.cookie_jar.clear()
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    await posted(f"{url}/rating", {"rating": "4"}, url, "Thank you for rating this ticket.")
    machines = f"/licences/{serial['id']}"
    machine = {"name": "Caja PRG", "fingerprint": "FP-PRG-0001"}
    await posted(f"{machines}/machines", machine, machines, "The machine was activated.")
    client.session.cookie_jar.clear()
    await login(client, "admin", language="en")
    policy = {"number": "POL-PRG-1", "serial_id": str(serial_id(config, PACIFICO_SERIAL)), "description": "PRG"}
    policy |= {"registered_on": "2025-02-01", "valid_until": "2030-01-31"}
    await posted("/admin/licences/policies", policy, "/admin/licences", "Policy saved.")
