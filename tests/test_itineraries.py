"""Operations' itineraries and services: edited, closed (no new generations, generated tickets still good at
the gate within their window), searched and paged, through the real app, SQLite and kiosk protocol."""

from __future__ import annotations

import html
import io
import re

from tests.gate_support import enrol_kiosk, make_itinerary, make_tickets, redeem
from tests.helpers import alert_text, db_rows, field_errors, get_form, login


async def test_an_itinerary_is_edited_on_a_form_showing_its_local_times(client, config):
    await login(client, "operaciones")
    itinerary = db_rows(config, "SELECT id FROM itineraries WHERE vessel = 'MSC Guayaquil'")[0][0]
    page, hidden = await get_form(client, f"/ops/itineraries/{itinerary}")
    form = dict(re.findall(r'name="(\w+)" type="[\w-]+" value="([^"]*)"', page))
    assert form["vessel"] == "MSC Guayaquil" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", form["valid_until"])
    resp = await client.post(f"/ops/itineraries/{itinerary}", data={**hidden, **form, "valid_until": "ayer"})
    assert resp.status == 400 and set(field_errors(await resp.text())) == {"valid_until"}
    changed = {**form, "berth": "M4", "valid_until": "2027-01-10T18:00"}
    resp = await client.post(f"/ops/itineraries/{itinerary}", data={**hidden, **changed})
    assert alert_text(await resp.text()) == "Itinerario guardado."
    assert db_rows(config, "SELECT berth, valid_until FROM itineraries WHERE id = ?", (itinerary,)) == [
        ("M4", "2027-01-10T18:00+00:00")
    ]


async def test_a_closed_itinerary_takes_no_new_tickets_but_its_tickets_still_pass_the_gate(client, config):
    app = client.server.app
    itinerary = await make_itinerary(app)
    [ticket] = await make_tickets(app, 1, itinerary_id=itinerary)
    await login(client, "operaciones")
    page, hidden = await get_form(client, f"/ops/itineraries/{itinerary}/close")
    what = html.unescape(page.split('id="what-will-happen"')[1].split("</section>")[0])
    assert "ya no se pueden generar tickets" in what and "siguen valiendo en la garita" in what
    assert db_rows(config, "SELECT active FROM itineraries WHERE id = ?", (itinerary,)) == [(1,)]
    resp = await client.post(f"/ops/itineraries/{itinerary}/close", data=hidden)
    page = await resp.text()
    assert alert_text(page) == "Itinerario cerrado: ya no se generan tickets para él."
    assert (await client.post(f"/ops/itineraries/{itinerary}/close", data=hidden)).status == 409
    # Customers can no longer choose it...
    await client.post("/logout", data=hidden)
    await login(client, "pacifico")
    page = await (await client.get("/tickets/generate?quantity=1")).text()
    assert f'<option value="{itinerary}"' not in page
    _page, hidden = await get_form(client, "/tickets/generate?quantity=1")
    services = re.findall(r'name="services" value="(\d+)"', _page)
    before = db_rows(config, "SELECT COUNT(*) FROM tickets")
    resp = await client.post(
        "/tickets/generate", data={**hidden, "quantity": "1", "itinerary_id": str(itinerary), "services": services[0]}
    )
    assert resp.status == 400 and "itinerary_id" in field_errors(await resp.text())
    assert db_rows(config, "SELECT COUNT(*) FROM tickets") == before
    # ...while the ticket generated before still passes the gate within its window.
    kiosk = await enrol_kiosk(client)
    assert (await redeem(client, kiosk, ticket["code"]))["accepted"] is True


async def test_services_are_edited_and_closed_and_a_closed_one_is_not_offered(client, config):
    await login(client, "operaciones")
    service, code = db_rows(config, "SELECT id, code FROM services ORDER BY id LIMIT 1")[0]
    page, hidden = await get_form(client, f"/ops/services/{service}")
    other = db_rows(config, "SELECT code FROM services WHERE id != ?", (service,))[0][0]
    resp = await client.post(
        f"/ops/services/{service}", data={**hidden, "code": other, "name_es": "Otro", "name_en": "Other"}
    )
    assert field_errors(await resp.text()) == {"code": "Otro servicio tiene este código."}
    resp = await client.post(
        f"/ops/services/{service}", data={**hidden, "code": code, "name_es": "Nuevo nombre", "name_en": "New name"}
    )
    assert alert_text(await resp.text()) == "Servicio guardado."
    page, _ = await get_form(client, f"/ops/services/{service}/close")
    assert "ya no se puede elegir para nuevos tickets" in html.unescape(page)
    resp = await client.post(f"/ops/services/{service}/close", data=hidden)
    assert alert_text(await resp.text()) == "Servicio cerrado: ya no se generan tickets con él."
    closed = await (await client.get("/ops/services?status=closed")).text()
    assert re.findall(r'<tr data-id="(\d+)"', closed) == [str(service)]
    await client.post("/logout", data=hidden)
    await login(client, "pacifico")
    page = await (await client.get("/tickets/generate?quantity=1")).text()
    assert f'name="services" value="{service}"' not in page and "Nuevo nombre" not in page


async def test_itineraries_are_searched_and_paged_by_id_never_shifting(client, config):
    await login(client, "operaciones")
    _page, hidden = await get_form(client, "/ops/itineraries")
    rows = "".join(
        f"Nave Lote,{n:03d},2026-12-01T08:00,2026-12-02T08:00,2026-11-30T00:00,2026-12-03T00:00\n" for n in range(70)
    )
    upload = io.BytesIO(f"vessel,voyage,eta,etd,valid_from,valid_until\n{rows}".encode())
    upload.name = "it.csv"
    resp = await client.post("/ops/itineraries/import", data={**hidden, "file": upload})
    assert alert_text(await resp.text()) == "Importado: 70 itinerarios."

    async def voyages(path: str) -> tuple[list[str], str | None]:
        page = await (await client.get(path)).text()
        older = re.search(r'href="([^"]+)" rel="next"', page)
        return re.findall(r"<td[^>]*>Nave Lote / (\d+)</td>", page), html.unescape(older[1]) if older else None

    first, older = await voyages("/ops/itineraries?q=nave l&status=open")
    assert first == [f"{n:03d}" for n in range(69, 19, -1)] and older
    second, older = await voyages(older)
    assert second == [f"{n:03d}" for n in range(19, -1, -1)] and older is None
    assert (await voyages("/ops/itineraries?q=nave l&status=closed"))[0] == []
    page = await (await client.get("/ops/itineraries?q=msc")).text()
    assert "MSC Guayaquil" in page and "Maersk" not in page
