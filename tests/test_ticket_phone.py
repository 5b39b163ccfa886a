"""A gate ticket on the customer's phone: the QR of the very code the printed ticket carries, the 20 digits
under it, a brightness hint, the page kept for this session only; "Deleted" / "Used" once that is so;
and the same facts as JSON for the app."""

from __future__ import annotations

import re

import cv2
import numpy as np

from gate_agent.scanner.decoders import default_decoder
from gate_core.codes import decimal_form
from tests.gate_support import PACIFICO_TAX_ID, enrol_kiosk, make_tickets, redeem
from tests.helpers import api_error, get_form, login
from tests.test_ticket_share import ANDINA, grouped, shown_code, shows_none_of
from tests.test_tickets_api import customer


def svg_modules(page: str) -> np.ndarray:
    """The QR drawn by the page's inline SVG, one pixel per module (dark = 0), read from its path as a
    browser would draw it: ``M``/``m`` move the pen, ``h n`` paints n modules of the pen's row."""
    svg = re.search(r'<svg viewBox="0 0 (\d+) (\d+)" class="qr">(.*?)</svg>', page, re.S)
    assert svg, "no QR on the page"
    size = int(svg[1])
    image = np.full((size, size), 255, np.uint8)
    path = re.search(r'<path stroke="#000" d="([^"]+)"', svg[3])[1]
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d. ]+)", path):
        values = [float(v) for v in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:
            length = values[0] - x if command == "H" else values[0]
            image[int(y), int(x) : int(x + length)] = 0
            x += length
    return image


def decoded(page: str) -> list[str]:
    """What the kiosk's decoder reads from the page's QR, drawn at 8 px per module."""
    modules = svg_modules(page)
    frame = cv2.resize(modules, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    return default_decoder().decode(frame)


async def test_the_phone_shows_the_printed_tickets_qr_and_code_for_this_session_only(client):
    (ticket,) = await make_tickets(client.app, 1)
    await login(client, "andina", profile=ANDINA)
    resp = await client.get(f"/tickets/{ticket['id']}/phone")
    page = await resp.text()
    assert resp.status == 200
    assert decoded(page) == [decimal_form(ticket["code"])]  # the same text the PDF's QR carries
    assert shown_code(page) == grouped(ticket["short_code"])
    assert 'aria-label="Código para digitar a mano"' in page
    assert "Suba el brillo de la pantalla" in page
    assert resp.headers["Cache-Control"] == "no-store"  # the HTTP cache never keeps it; the app's worker may
    session_cache = re.search(r'<meta name="portgate-cache" content="([0-9a-f]{24})">', page)[1]
    assert resp.headers["X-Portgate-Cache"] == session_cache


async def test_a_ticket_not_printed_yet_is_revealed_on_the_phone_as_printing_does(client):
    (ticket,) = await make_tickets(client.app, 1, printed=False)
    await login(client, "andina", profile=ANDINA)
    page, hidden = await get_form(client, f"/tickets/{ticket['id']}/phone")
    assert "<svg" not in page and ticket["short_code"] not in page
    assert 'id="show-on-phone"' in page and "No impreso" in page
    resp = await client.post(f"/tickets/{ticket['id']}/phone", data=hidden)
    page = await resp.text()
    assert resp.url.path == f"/tickets/{ticket['id']}/phone"
    assert decoded(page) == [decimal_form(ticket["code"])]
    headers = await customer(client, "andina", ANDINA)
    assert (await (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers)).json())["printed"]


async def test_a_deleted_or_used_ticket_shows_so_instead_of_its_qr(client):
    deleted, used = await make_tickets(client.app, 2)
    headers = await customer(client, "andina", ANDINA)
    await client.delete(f"/api/v1/tickets/{deleted['id']}", headers=headers)
    assert (await redeem(client, await enrol_kiosk(client), used["code"]))["accepted"]
    await login(client, "andina", profile=ANDINA)
    for ticket, status, label in ((deleted, "deleted", "Eliminado"), (used, "used", "Usado")):
        resp = await client.get(f"/tickets/{ticket['id']}/phone")
        page = await resp.text()
        # 200, not 404: a phone that kept the ticket offline replaces its copy with this one.
        assert resp.status == 200 and resp.headers["X-Portgate-Cache"]
        assert f'data-status="{status}"' in page and label in page
        assert "<svg" not in page and shows_none_of(page, ticket["short_code"])


async def test_the_app_reads_the_ticket_for_the_phone_as_json(client):
    (ticket,) = await make_tickets(client.app, 1)
    headers = await customer(client, "andina", ANDINA)
    body = await (await client.get(f"/api/v1/tickets/{ticket['id']}/phone", headers=headers)).json()
    assert body["status"] == "valid"
    assert (body["code"], body["short_code"]) == (ticket["code"], ticket["short_code"])
    assert body["itinerary"]["vessel"] == "MSC AURORA" and body["itinerary"]["valid_until"] > body["printed_at"]
    await client.delete(f"/api/v1/tickets/{ticket['id']}", headers=headers)
    gone = await (await client.get(f"/api/v1/tickets/{ticket['id']}/phone", headers=headers)).json()
    assert (gone["status"], gone["code"], gone["short_code"]) == ("deleted", None, None) and gone["deleted_at"]


async def test_another_companys_ticket_is_not_found_on_the_phone(client):
    (ticket,) = await make_tickets(client.app, 1, tax_id=PACIFICO_TAX_ID)
    pacifico = await customer(client, "pacifico")
    assert (await client.get(f"/api/v1/tickets/{ticket['id']}/phone", headers=pacifico)).status == 200
    headers = await customer(client, "andina", ANDINA)
    resp = await client.get(f"/api/v1/tickets/{ticket['id']}/phone", headers=headers)
    assert resp.status == 404 and (await api_error(resp))["code"] == "not_found"
    await login(client, "andina", profile=ANDINA)
    page = await client.get(f"/tickets/{ticket['id']}/phone")
    assert page.status == 404 and "X-Portgate-Cache" not in page.headers
    _page, hidden = await get_form(client, "/home")
    assert (await client.post(f"/tickets/{ticket['id']}/phone", data=hidden)).status == 404
