"""The customer's gate-ticket pages at port scale and without rough edges: every purchase reachable page by
page, any open itinerary found by searching, generating answered by a redirect, names nobody confuses."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from server.db import scalar
from server.tickets.service import confirm_purchase, record_purchase, save_itineraries, validate_itinerary
from server.web import DB
from tests.gate_support import PACIFICO_TAX_ID, company_id, now
from tests.helpers import alert_text, db_rows, get_form, login


def title_of(page: str) -> str:
    return html.unescape(re.search(r"<title>([^<]*)</title>", page)[1])


def menu_of(page: str) -> list[str]:
    menu = re.search(r'<nav class="sidemenu".*?</nav>', page, re.S)
    return [html.unescape(label) for label in re.findall(r"<a [^>]*>([^<]+)</a>", menu[0])]


async def confirmed_purchases(client, company: int, n: int, prefix: str = "LOTE") -> None:
    """``n`` purchases recorded and confirmed by billing, as its pages do, in one transaction."""

    def record(db) -> None:
        at = datetime.now(UTC)
        for i in range(n):
            values = {"company_id": company, "quantity": 1, "reference": f"{prefix}-{i:03d}"}
            confirm_purchase(db, record_purchase(db, values, now=at), now=at)
        unpaid = {"company_id": company, "quantity": 5, "reference": f"{prefix}-SIN-PAGO"}
        record_purchase(db, unpaid, now=at)  # not confirmed

    await client.app[DB].write(record)


async def test_the_tickets_page_reaches_every_confirmed_purchase_page_by_page(client, config):
    await confirmed_purchases(client, await company_id(client.app, PACIFICO_TAX_ID), 130)
    await login(client, "pacifico")
    path, seen = "/tickets", []
    while path:
        page = await (await client.get(path)).text()
        seen += re.findall(r"<tr><td[^>]*>(LOTE-\d+|LOTE-SIN-PAGO)</td>", page)
        older = re.search(r'href="(/tickets\?after=\d+)" rel="next"', page)
        path = html.unescape(older[1]) if older else ""
    assert seen == [f"LOTE-{i:03d}" for i in reversed(range(130))]  # newest first, none twice, none missing
    assert re.search(r'id="balance-confirmed">(\d+)', page)[1] == str(10 + 130)
    # A purchase added while the customer reads page 2 shows on page 1, never again on page 2.
    page2 = f"/tickets?after={await _purchase_id(client, 'LOTE-080')}"
    shown = re.findall(r"<tr><td[^>]*>([A-Z]+-\d+)</td>", await (await client.get(page2)).text())
    await confirmed_purchases(client, await company_id(client.app, PACIFICO_TAX_ID), 1, "NUEVA")
    assert re.findall(r"<tr><td[^>]*>([A-Z]+-\d+)</td>", await (await client.get(page2)).text()) == shown
    assert re.findall(r"<tr><td[^>]*>(NUEVA-\d+)</td>", await (await client.get("/tickets")).text()) == ["NUEVA-000"]


async def _purchase_id(client, reference: str) -> int:
    return await client.app[DB].read(
        lambda db: scalar(db, "SELECT MAX(id) FROM purchases WHERE reference = ?", (reference,))
    )


async def many_open_itineraries(client, n: int) -> None:
    """``n`` open itineraries arriving soon, and "Zeta Final" arriving after all of them."""
    start = now()

    def itinerary(vessel: str, voyage: str, days: int) -> dict:
        at = lambda d: (start + timedelta(days=d)).isoformat(timespec="minutes")  # noqa: E731
        return validate_itinerary(
            {
                "vessel": vessel,
                "voyage": voyage,
                "eta": at(days),
                "etd": at(days + 1),
                "valid_from": at(-1),
                "valid_until": at(days + 2),
            }
        )

    rows = [itinerary("Nave Lote", f"L{i:03d}", 1) for i in range(n)] + [itinerary("Zeta Final", "ZF-01", 30)]
    await client.app[DB].write(save_itineraries, rows, now=datetime.now(UTC))


async def test_the_generate_form_finds_any_open_itinerary_by_its_vessel_or_voyage(client, config):
    await many_open_itineraries(client, 260)
    zeta = db_rows(config, "SELECT id FROM itineraries WHERE vessel = 'Zeta Final'")[0][0]
    await login(client, "pacifico")
    page = await (await client.get("/tickets/generate?quantity=1")).text()
    assert f'<option value="{zeta}"' not in page and len(re.findall(r'<option value="\d+"', page)) <= 20
    # Without JavaScript: the search box reloads the form with the matches (any case, start of vessel or voyage).
    for term in ("zeta", "ZF-0"):
        page = await (await client.get(f"/tickets/generate?quantity=1&itinerary_q={term}")).text()
        assert re.findall(r'<option value="(\d+)"', page) == [str(zeta)]
        assert 'value="1"' in page  # the quantity asked for is kept
    # With JavaScript: the type-ahead asks for the same matches.
    found = await (await client.get("/tickets/itineraries?q=Zeta")).json()
    assert [i["id"] for i in found["itineraries"]] == [zeta] and found["itineraries"][0]["label"].startswith("Zeta")
    nothing = await (await client.get("/tickets/itineraries?q=%25")).json()  # a % is a letter, not a wildcard
    assert nothing == {"itineraries": []}
    # The itinerary found is the one generated for, and stays chosen when another field is wrong.
    _page, hidden = await get_form(client, "/tickets/generate?quantity=1&itinerary_q=zeta")
    service = re.findall(r'name="services" value="(\d+)"', _page)[0]
    resp = await client.post("/tickets/generate", data={**hidden, "quantity": "1", "itinerary_id": str(zeta)})
    assert resp.status == 400 and f'<option value="{zeta}" selected' in await resp.text()
    data = {**hidden, "quantity": "1", "itinerary_id": str(zeta), "services": service}
    resp = await client.post("/tickets/generate", data=data)
    assert "Zeta Final / ZF-01" in html.unescape(await resp.text())


async def test_generating_answers_a_redirect_so_back_and_refresh_never_generate_twice(client, config):
    await login(client, "pacifico", language="en")
    page, hidden = await get_form(client, "/tickets/generate?quantity=3")
    itinerary = re.search(r'<option value="(\d+)" >MSC Guayaquil', page)[1]
    service = re.findall(r'name="services" value="(\d+)"', page)[0]
    data = {**hidden, "quantity": "3", "itinerary_id": itinerary, "services": service}
    resp = await client.post("/tickets/generate", data=data, allow_redirects=False)
    assert resp.status == 303 and re.fullmatch(r"/tickets/generations/\d+", resp.headers["Location"])
    generations = db_rows(config, "SELECT COUNT(*) FROM generations")
    page = await (await client.get(resp.headers["Location"])).text()
    transaction = re.search(r'id="transaction-no">([^<]+)<', page)[1]
    assert alert_text(page).startswith("The process was completed successfully.")
    assert title_of(page) == f"Tickets generated · {transaction} · Portgate"
    # Refresh: the same transaction, the message not again, nothing generated.
    again = await (await client.get(resp.headers["Location"])).text()
    assert re.search(r'id="transaction-no">([^<]+)<', again)[1] == transaction and not alert_text(again)
    assert db_rows(config, "SELECT COUNT(*) FROM generations") == generations
    # Another company's transaction is not found.
    await client.post("/logout", data=hidden)
    await login(client, "andina", profile="Exportadora Andina S.A.")
    assert (await client.get(resp.headers["Location"])).status == 404


async def test_the_menu_and_titles_name_gate_tickets_and_each_page(client, config):
    for path in ("/password/forgot", "/register/customer", "/register/prospect"):
        assert title_of(await (await client.get(path)).text()) != "Portgate", path
    assert title_of(await (await client.get("/password/forgot")).text()) == "¿Olvidó su contraseña? · Portgate"
    await login(client, "pacifico", language="es")
    page = await (await client.get("/tickets")).text()
    assert "Transacciones — Tickets" in menu_of(page) and "Tickets" not in menu_of(page)
    assert title_of(page) == "Transacciones — Tickets · Portgate"
    page, hidden = await get_form(client, "/tickets/generate?quantity=1")
    itinerary = re.search(r'<option value="(\d+)" >MSC Guayaquil', page)[1]
    service = re.findall(r'name="services" value="(\d+)"', page)[0]
    data = {**hidden, "quantity": "1", "itinerary_id": itinerary, "services": service}
    done = await (await client.post("/tickets/generate", data=data)).text()
    assert title_of(done).startswith("Tickets generados · TX")
    ticket = db_rows(config, "SELECT MAX(id) FROM tickets")[0][0]
    page = await (await client.get(f"/tickets/{ticket}/delete")).text()
    assert title_of(page) == f"¿Eliminar el ticket #{ticket}? · Portgate"
    await client.get("/lang/en")
    page = await (await client.get("/tickets")).text()
    assert "Gate tickets" in menu_of(page) and title_of(page) == "Gate tickets · Portgate"


async def test_the_kiosk_form_finds_any_open_itinerary_it_should_admit(client, config):
    await many_open_itineraries(client, 260)
    zeta = db_rows(config, "SELECT id FROM itineraries WHERE vessel = 'Zeta Final'")[0][0]
    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/kiosks")).text()
    assert f'name="itineraries" value="{zeta}"' not in page
    assert len(re.findall(r'name="itineraries" value="\d+"', page)) <= 20
    page, hidden = await get_form(client, "/gate/kiosks?itinerary_q=zeta")
    assert re.findall(r'name="itineraries" value="(\d+)"', page) == [str(zeta)]
    # A refused form keeps the ticked itinerary offered (and ticked), whatever the search showed.
    resp = await client.post("/gate/kiosks", data={**hidden, "name": "", "itineraries": str(zeta)})
    assert resp.status == 400 and f'name="itineraries" value="{zeta}" checked' in await resp.text()
    resp = await client.post("/gate/kiosks", data={**hidden, "name": "Garita Zeta", "itineraries": str(zeta)})
    assert resp.status == 200
    assert db_rows(config, "SELECT allowed_itineraries FROM kiosks WHERE name = 'Garita Zeta'") == [(f"[{zeta}]",)]
