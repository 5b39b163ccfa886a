"""Driver share links: a customer sends one gate ticket to a truck driver as a link that opens that ticket
without signing in, only it, until the gate window closes, the ticket is deleted or the link is revoked;
only the ticket's company creates or revokes links, and every open is in the audit log."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from server.tickets.service import save_itinerary, validate_itinerary
from server.tickets.share_views import UNKNOWN_TOKENS_PER_ADDRESS
from server.web import DB
from tests.gate_support import (
    PACIFICO_TAX_ID,
    enrol_kiosk,
    make_itinerary,
    make_tickets,
    now,
    redeem,
)
from tests.helpers import api_error, bearer, db_rows, get_form, login
from tests.phone_support import another_phone
from tests.test_tickets_api import customer

ANDINA = "Exportadora Andina S.A."


def grouped(digits: str) -> str:
    return " ".join(digits[i : i + 5] for i in range(0, len(digits), 5))


def shown_code(page: str) -> str | None:
    """The short code a page shows under its QR, as a person reads it (the tags between its blocks dropped)."""
    found = re.search(r'<p class="short-code" id="short-code"[^>]*>(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", found[1]) if found else None


def shows_none_of(page: str, digits: str) -> bool:
    """Whether no part of a short code (any two of its blocks of five, as the phone lays them out) is on the page."""
    blocks = grouped(digits).split()
    return all(" ".join(blocks[i : i + 2]) not in page for i in range(len(blocks) - 1))


async def share_on_the_page(client, ticket_id: int) -> tuple[str, str]:
    """Create a link as the customer does on the ticket's phone page; returns the page shown after, and the link."""
    _page, hidden = await get_form(client, f"/tickets/{ticket_id}/phone")
    resp = await client.post(f"/tickets/{ticket_id}/share-links", data=hidden)
    page = await resp.text()
    assert resp.status == 200 and resp.url.path == f"/tickets/{ticket_id}/phone", page
    return page, html.unescape(re.search(r'id="share-url" readonly value="([^"]+)"', page)[1])


@dataclass
class Opened:
    status: int
    text: str
    headers: dict[str, str]


async def open_as_driver(client, link: str, headers: dict[str, str] | None = None) -> Opened:
    """Open ``link`` from a phone that never signed in."""
    async with another_phone(client) as driver, driver.get(urlsplit(link).path, headers=headers) as resp:
        return Opened(resp.status, await resp.text(), dict(resp.headers))


#: What the open page's script (static/app/ticket.js) sends when it checks whether its ticket changed.
CHECK = {"X-Portgate-Check": "1"}


def audit_events(config, ticket_id: int) -> list[tuple[str, str]]:
    return [
        (event, detail)
        for event, detail in db_rows(
            config, "SELECT event, detail FROM audit_log WHERE event LIKE 'ticket.link_%' ORDER BY id"
        )
        if detail.split()[0] == str(ticket_id)
    ]


async def test_a_driver_opens_the_shared_ticket_without_signing_in_and_sees_only_it(client, config):
    ticket, other = await make_tickets(client.app, 2)
    await login(client, "andina", profile=ANDINA)
    page, link = await share_on_the_page(client, ticket["id"])
    assert "Enlace creado" in page
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/t/[A-Za-z0-9_-]{32}", link)
    token = link.rsplit("/", 1)[1]
    assert token not in str(db_rows(config, "SELECT * FROM ticket_share_links"))  # only its hash is kept

    resp = await open_as_driver(client, link)
    shown = resp.text
    assert resp.status == 200
    assert '<svg viewBox="0 0 ' in shown and shown_code(shown) == grouped(ticket["short_code"])
    assert "MSC AURORA" in shown
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert shows_none_of(shown, other["short_code"])
    for private in (ANDINA, "Andina", "andina", f"/tickets/{other['id']}", "share-links"):
        assert private not in shown, private
    assert audit_events(config, ticket["id"]) == [
        ("ticket.link_created", f"{ticket['id']} #1"),
        ("ticket.link_opened", f"{ticket['id']} #1"),
    ]
    assert db_rows(config, "SELECT open_count FROM ticket_share_links") == [(1,)]


async def test_a_revoked_link_shows_a_clear_page_and_no_ticket(client, config):
    (ticket,) = await make_tickets(client.app, 1)
    await login(client, "andina", profile=ANDINA)
    page, link = await share_on_the_page(client, ticket["id"])
    link_id = re.search(r'<li data-link="(\d+)">', page)[1]
    _page, hidden = await get_form(client, f"/tickets/{ticket['id']}/phone")
    resp = await client.post(f"/tickets/{ticket['id']}/share-links/{link_id}/revoke", data=hidden)
    assert "El enlace fue dado de baja" in await resp.text()

    resp = await open_as_driver(client, link)
    shown = resp.text
    assert resp.status == 410
    assert "Este enlace ya no funciona" in shown and "lo dio de baja" in shown
    assert "<svg" not in shown and shows_none_of(shown, ticket["short_code"])
    events = [event for event, _detail in audit_events(config, ticket["id"])]
    assert events == ["ticket.link_created", "ticket.link_revoked", "ticket.link_refused"]
    assert db_rows(config, "SELECT address FROM audit_log WHERE event = 'ticket.link_refused'")[0][0]


async def test_deleting_the_ticket_kills_its_links(client):
    (ticket,) = await make_tickets(client.app, 1)
    headers = await customer(client, "andina", ANDINA)
    created = await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)
    link = (await created.json())["url"]
    assert (await client.delete(f"/api/v1/tickets/{ticket['id']}", headers=headers)).status == 200
    resp = await open_as_driver(client, link)
    assert resp.status == 410
    shown = resp.text
    assert "fue eliminado" in shown and shows_none_of(shown, ticket["short_code"])


async def test_the_link_dies_when_the_itinerarys_gate_window_closes(client):
    itinerary_id = await make_itinerary(client.app, opens=timedelta(days=-2), closes=timedelta(days=1))
    (ticket,) = await make_tickets(client.app, 1, itinerary_id=itinerary_id)
    headers = await customer(client, "andina", ANDINA)
    created = await (await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)).json()
    assert (await open_as_driver(client, created["url"])).status == 200

    # Operations move the window's end to a minute ago (the vessel left early).
    def close_window(db) -> None:
        row = next(db.query("SELECT * FROM itineraries WHERE id = ?", (itinerary_id,)))
        at = lambda d: (now() + d).isoformat(timespec="minutes")  # noqa: E731
        row.update(valid_from=at(timedelta(days=-2)), valid_until=at(timedelta(minutes=-1)))
        save_itinerary(db, validate_itinerary(row), itinerary_id=itinerary_id, now=now())

    await client.app[DB].write(close_window)
    resp = await open_as_driver(client, created["url"])
    assert resp.status == 410 and "ventana de garita de este ticket ya terminó" in resp.text
    again = await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)
    assert resp.status == 410 and again.status == 409 and (await api_error(again))["code"] == "expired"


async def test_a_used_ticket_shows_used_to_the_driver_and_gets_no_new_link(client):
    (ticket,) = await make_tickets(client.app, 1)
    headers = await customer(client, "andina", ANDINA)
    created = await (await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)).json()
    assert (await redeem(client, await enrol_kiosk(client), ticket["code"]))["accepted"]
    resp = await open_as_driver(client, created["url"])
    shown = resp.text
    assert resp.status == 200 and 'data-status="used"' in shown and "Usado" in shown and "<svg" not in shown
    again = await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)
    assert again.status == 409 and (await api_error(again))["code"] == "used"


async def test_only_the_tickets_company_creates_lists_or_revokes_its_links(client, config):
    (ticket,) = await make_tickets(client.app, 1)
    andina = await customer(client, "andina", ANDINA)
    link = await (await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=andina)).json()
    pacifico = await customer(client, "pacifico")
    base = f"/api/v1/tickets/{ticket['id']}/share-links"
    for resp in (
        await client.post(base, headers=pacifico),
        await client.get(base, headers=pacifico),
        await client.delete(f"{base}/{link['id']}", headers=pacifico),
    ):
        assert resp.status == 404 and (await api_error(resp))["code"] == "not_found"
    await login(client, "pacifico")
    _page, hidden = await get_form(client, "/home")
    assert (await client.post(f"/tickets/{ticket['id']}/share-links", data=hidden)).status == 404
    assert (await client.post(f"/tickets/{ticket['id']}/share-links/{link['id']}/revoke", data=hidden)).status == 404
    assert db_rows(config, "SELECT COUNT(*), COUNT(revoked_at) FROM ticket_share_links") == [(1, 0)]
    pacifico_ticket = (await make_tickets(client.app, 1, tax_id=PACIFICO_TAX_ID))[0]
    # Andina's link id under Pacífico's own ticket is not found either.
    resp = await client.delete(f"/api/v1/tickets/{pacifico_ticket['id']}/share-links/{link['id']}", headers=pacifico)
    assert resp.status == 404


async def test_the_api_creates_lists_and_revokes_links(client):
    (ticket,) = await make_tickets(client.app, 1, printed=False)
    headers = await customer(client, "andina", ANDINA)
    base = f"/api/v1/tickets/{ticket['id']}/share-links"
    resp = await client.post(base, headers=headers)
    assert resp.status == 201
    created = await resp.json()
    assert created["ticket_id"] == ticket["id"] and created["revoked_at"] is None and created["open_count"] == 0
    # A link shows the code at the gate: the ticket is printed now, as the kiosks learn.
    shown = await (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers)).json()
    assert shown["printed"] is True
    await open_as_driver(client, created["url"])
    listed = (await (await client.get(base, headers=headers)).json())["links"]
    assert [(x["id"], x["open_count"], x["expires_at"]) for x in listed] == [(created["id"], 1, created["expires_at"])]
    assert "url" not in listed[0]  # the token is shown once, when created
    revoked = await (await client.delete(f"{base}/{created['id']}", headers=headers)).json()
    assert revoked["revoked_at"]
    again = await (await client.delete(f"{base}/{created['id']}", headers=headers)).json()
    assert again["revoked_at"] == revoked["revoked_at"]  # revoking twice changes nothing
    assert (await open_as_driver(client, created["url"])).status == 410


async def test_a_ticket_has_at_most_ten_live_links(client):
    (ticket,) = await make_tickets(client.app, 1)
    headers = bearer((await customer(client, "andina", ANDINA))["Authorization"][7:])
    base = f"/api/v1/tickets/{ticket['id']}/share-links"
    for _ in range(10):
        assert (await client.post(base, headers=headers)).status == 201
    refused = await client.post(base, headers=headers)
    assert refused.status == 409 and (await api_error(refused))["code"] == "too_many_links"
    first = (await (await client.get(base, headers=headers)).json())["links"][-1]
    await client.delete(f"{base}/{first['id']}", headers=headers)
    assert (await client.post(base, headers=headers)).status == 201


async def test_a_made_up_or_altered_link_is_not_found(client):
    (ticket,) = await make_tickets(client.app, 1)
    headers = await customer(client, "andina", ANDINA)
    link = (await (await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)).json())["url"]
    path = urlsplit(link).path
    assert (await open_as_driver(client, path)).status == 200
    altered = path[:-1] + ("A" if path[-1] != "A" else "B")
    for path in (altered, "/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/t/short", "/t/" + "x" * 200):
        resp = await open_as_driver(client, path)
        assert resp.status == 404 and "<svg" not in resp.text, path


async def test_the_open_pages_checks_are_not_opens_and_show_no_code(client, config):
    (ticket,) = await make_tickets(client.app, 1)
    headers = await customer(client, "andina", ANDINA)
    base = f"/api/v1/tickets/{ticket['id']}/share-links"
    created = await (await client.post(base, headers=headers)).json()
    assert (await open_as_driver(client, created["url"])).status == 200
    # The driver's phone comes back online, and back to the screen, several times.
    for _ in range(3):
        checked = await open_as_driver(client, created["url"], CHECK)
        assert checked.status == 200 and json.loads(checked.text) == {"status": "valid"}
        assert ticket["short_code"] not in checked.text and ticket["code"] not in checked.text
    assert db_rows(config, "SELECT open_count FROM ticket_share_links") == [(1,)]
    await client.delete(f"{base}/{created['id']}", headers=headers)
    checked = await open_as_driver(client, created["url"], CHECK)
    assert json.loads(checked.text) == {"status": "revoked"}  # the page reloads, and that open is in the log
    events = [event for event, _detail in audit_events(config, ticket["id"])]
    assert events == ["ticket.link_created", "ticket.link_opened", "ticket.link_revoked"]


async def test_a_made_up_link_is_answered_while_the_writer_is_busy(client):
    """A stranger trying tokens never waits for, nor holds, the one writer the gate's redeems wait for."""
    (ticket,) = await make_tickets(client.app, 1)
    headers = await customer(client, "andina", ANDINA)
    link = (await (await client.post(f"/api/v1/tickets/{ticket['id']}/share-links", headers=headers)).json())["url"]
    release = threading.Event()
    busy = asyncio.ensure_future(client.app[DB].write(lambda db: release.wait(30)))
    try:
        made_up = await asyncio.wait_for(open_as_driver(client, "/t/" + "A" * 32), 10)
        assert made_up.status == 404
        checked = await asyncio.wait_for(open_as_driver(client, link, CHECK), 10)
        assert json.loads(checked.text) == {"status": "valid"}
    finally:
        release.set()
        await busy
    assert (await open_as_driver(client, link)).status == 200  # a real open takes its turn to be counted


async def test_too_many_made_up_links_from_one_address_are_refused_for_a_while(client):
    async with another_phone(client) as stranger:
        for n in range(UNKNOWN_TOKENS_PER_ADDRESS):
            async with stranger.get(f"/t/{n:032d}") as resp:
                assert resp.status == 404
        async with stranger.get("/t/" + "B" * 32) as resp:
            shown = await resp.text()
            assert resp.status == 429
    assert "Demasiados intentos fallidos desde su dirección" in shown and "10 minutos" in shown


async def test_the_page_showing_a_new_links_address_is_not_kept_for_offline(client):
    """The app's worker keeps only pages that name their cache: the one-time address must not come back offline."""
    (ticket,) = await make_tickets(client.app, 1)
    await login(client, "andina", profile=ANDINA)
    phone_page = f"/tickets/{ticket['id']}/phone"
    assert "X-Portgate-Cache" in (await client.get(phone_page)).headers
    _page, hidden = await get_form(client, phone_page)
    created = await client.post(f"/tickets/{ticket['id']}/share-links", data=hidden)
    assert 'id="share-url"' in await created.text() and "X-Portgate-Cache" not in created.headers
    again = await client.get(phone_page)
    assert 'id="share-url"' not in await again.text() and "X-Portgate-Cache" in again.headers
    checked = await client.get(phone_page, headers=CHECK)  # and the page's own check: its state alone
    assert await checked.json() == {"status": "valid"} and "X-Portgate-Cache" not in checked.headers
