"""Service tickets through the real app, SQLite and SMTP: opening, both refusals, statuses, rating,
numbering under concurrency, isolation between companies, relative times, e-mails."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from server.i18n import translate
from server.timefmt import relative
from tests.dbaccess import db_execute
from tests.helpdesk_support import (
    ANDINA,
    PACIFICO,
    PACIFICO_SERIAL,
    new_serial,
    open_ticket,
    png_bytes,
    policy_of,
    ticket_body,
    token_as,
)
from tests.helpers import alert_text, api_error, db_rows, field_errors, get_form, login

NUMBER = re.compile(r"^S_\d+_\d{14}$")
LIMIT_MSGID = "The serial number: %(serial)s has reached the limit of tickets allowed, simultaneously"
EXISTS_MSGID = "You already have an open ticket for the requested system and e-mail; please check the list of tickets"


async def test_open_a_ticket_from_a_policy_in_the_portal(client, config, smtp):
    await login(client, "pacifico", language="en")
    page = await (await client.get("/helpdesk/tickets/new")).text()
    policy_id = policy_of(config, PACIFICO_SERIAL)
    assert f"/helpdesk/tickets/new?policy_id={policy_id}" in page and PACIFICO_SERIAL in page
    page, hidden = await get_form(client, f"/helpdesk/tickets/new?policy_id={policy_id}")
    assert PACIFICO_SERIAL in page and 'id="policy-system">Portgate Portal<' in page
    assert re.search(r'id="policy-days">\d+<', page)

    bad = {
        **hidden,
        "policy_id": str(policy_id),
        "area": "nowhere",
        "email": "pedro@pacifico.example",
        "email_confirm": "otro@pacifico.example",
        "phone": "12",
        "phone_confirm": "",
    }
    resp = await client.post("/helpdesk/tickets/new", data=bad)
    assert resp.status == 400
    errors = field_errors(await resp.text())
    assert set(errors) == {"area", "subject", "email_confirm", "phone", "phone_confirm", "contact_hours", "description"}
    assert errors["email_confirm"] == "The e-mail addresses do not match."
    assert db_rows(
        config,
        "SELECT COUNT(*) FROM service_tickets WHERE company_id = (SELECT id FROM companies WHERE tax_id = ?)",
        (PACIFICO,),
    ) == [(0,)]

    form = {**hidden, **{k: str(v) for k, v in ticket_body(policy_id, "pedro@pacifico.example").items()}}
    data = [*form.items(), ("attachments", ("captura.png", png_bytes(), "image/png"))]
    payload = aiohttp.FormData()
    for name, value in data:
        if isinstance(value, tuple):
            payload.add_field(name, value[1], filename=value[0], content_type=value[2])
        else:
            payload.add_field(name, value)
    resp = await client.post("/helpdesk/tickets/new", data=payload)
    page = await resp.text()
    assert resp.status == 200 and "/helpdesk/tickets/" in str(resp.url)
    number = re.search(r'id="ticket-number">([^<]+)<', page)[1]
    assert NUMBER.match(number)
    assert alert_text(page) == f"Your ticket {number} was generated."
    assert 'data-status="open"' in page and "captura.png" in page
    listed = await (await client.get("/helpdesk/tickets")).text()
    assert number in listed and "Technical support" in listed

    mail = smtp.wait_for("pedro@pacifico.example", f"[{number}]")
    token = db_rows(config, "SELECT reply_token FROM service_tickets WHERE number = ?", (number,))[0][0]
    assert mail["Reply-To"] == f"soporte+{token}@terminal.example"
    assert number in mail.get_content() and "/helpdesk/tickets/" in mail.get_content()


async def test_refused_when_the_same_system_and_email_have_an_open_ticket(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA, max_open_tickets=5)
    first = await open_ticket(client, andina, serial["policy_id"], "soporte.ti@andina.example")
    assert first.status == 201
    first = await first.json()
    resp = await open_ticket(client, andina, serial["policy_id"], "SOPORTE.TI@andina.example", subject="Otra cosa")
    assert resp.status == 409
    body = await resp.json()
    assert body["error"]["code"] == "open_ticket_exists"
    assert body["error"]["message"] == EXISTS_MSGID
    assert body["existing_ticket"]["number"] == first["number"]
    # Another e-mail for the same system is a different matter.
    assert (await open_ticket(client, andina, serial["policy_id"], "compras@andina.example")).status == 201

    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, f"/helpdesk/tickets/new?policy_id={serial['policy_id']}")
    form = {**hidden, **{k: str(v) for k, v in ticket_body(serial["policy_id"], "soporte.ti@andina.example").items()}}
    resp = await client.post("/helpdesk/tickets/new", data=form)
    page = await resp.text()
    assert resp.status == 409 and EXISTS_MSGID in page
    assert re.search(rf'<a href="/helpdesk/tickets/{first["id"]}" id="existing-ticket">{first["number"]}</a>', page)

    # Once that ticket is finished, the same system and e-mail may open a new one.
    mesa = await token_as(client, "mesa")
    assert (await client.post(f"/api/v1/helpdesk/tickets/{first['id']}/close", headers=mesa)).status == 200
    assert (await open_ticket(client, andina, serial["policy_id"], "soporte.ti@andina.example")).status == 201


async def test_refused_when_the_serial_reached_its_simultaneous_ticket_limit(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA, max_open_tickets=2)
    tickets = []
    for n in range(2):
        resp = await open_ticket(client, andina, serial["policy_id"], f"user{n}@andina.example")
        assert resp.status == 201
        tickets.append(await resp.json())
    before = db_rows(config, "SELECT COUNT(*) FROM service_tickets")
    resp = await open_ticket(client, andina, serial["policy_id"], "user9@andina.example")
    error = await api_error(resp)
    assert resp.status == 409 and error["code"] == "serial_ticket_limit"
    assert error["message"] == LIMIT_MSGID % {"serial": serial["serial"]}
    assert db_rows(config, "SELECT COUNT(*) FROM service_tickets") == before

    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, f"/helpdesk/tickets/new?policy_id={serial['policy_id']}")
    form = {**hidden, **{k: str(v) for k, v in ticket_body(serial["policy_id"], "user9@andina.example").items()}}
    resp = await client.post("/helpdesk/tickets/new", data=form)
    assert resp.status == 409
    assert LIMIT_MSGID % {"serial": serial["serial"]} in await resp.text()

    # A waiting ticket still counts; a cancelled one frees its place.
    mesa = await token_as(client, "mesa")
    resp = await client.post(
        f"/api/v1/helpdesk/tickets/{tickets[0]['id']}/replies", json={"body": "¿Versión?"}, headers=mesa
    )
    assert resp.status == 201 and (await resp.json())["status"] == "waiting_customer"
    assert (await open_ticket(client, andina, serial["policy_id"], "user9@andina.example")).status == 409
    assert (await client.post(f"/api/v1/helpdesk/tickets/{tickets[1]['id']}/cancel", headers=mesa)).status == 200
    assert (await open_ticket(client, andina, serial["policy_id"], "user9@andina.example")).status == 201


async def test_other_refusals_policy_expired_and_unknown_policy(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    expired = await new_serial(client, admin, config, ANDINA, days=-1)
    resp = await open_ticket(client, andina, expired["policy_id"], "x@andina.example")
    assert (await api_error(resp))["code"] == "policy_expired"
    resp = await open_ticket(client, andina, policy_of(config, PACIFICO_SERIAL), "x@andina.example")
    assert resp.status == 404
    resp = await open_ticket(client, andina, expired["policy_id"], "x@andina.example", area="marketing")
    assert resp.status == 400 and "area" in (await api_error(resp))["fields"]


def test_the_refusals_spanish_wording_is_the_seeds():
    # The catalog the pages and the API use says exactly what the seed portal says.
    assert (
        translate("es", LIMIT_MSGID)
        == "El número de serie: %(serial)s ha alcanzado el límite de tickets permitidos, simultáneamente"
    )
    assert translate("es", EXISTS_MSGID) == (
        "Ya cuenta con un ticket abierto para el sistema y correo solicitado, favor de consultar la lista de tickets"
    )


async def test_status_changes_thread_and_mail_on_reply_and_close(client, config, smtp):
    andina = await token_as(client, "andina", "customer")
    mesa = await token_as(client, "mesa")
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "hilo@andina.example")).json()
    assert ticket["status"] == "open"
    smtp.wait_for("hilo@andina.example", f"[{ticket['number']}]")
    base = f"/api/v1/helpdesk/tickets/{ticket['id']}"

    resp = await client.post(f"{base}/assign", headers=mesa)
    assert resp.status == 200 and (await resp.json())["agent"] == "Helena Helpdesk"
    resp = await client.post(f"{base}/replies", json={"body": "Por favor envíe el log."}, headers=mesa)
    assert (await resp.json())["status"] == "waiting_customer"
    mail = smtp.wait_for("hilo@andina.example", "nueva respuesta")
    assert "Por favor envíe el log." in mail.get_content()
    assert mail["Subject"].startswith(f"[{ticket['number']}]")

    resp = await client.post(f"{base}/replies", json={"body": "Aquí está."}, headers=andina)
    assert resp.status == 201 and (await resp.json())["status"] == "open"
    thread = await (await client.get(base, headers=andina)).json()
    assert [(r["author_role"], r["body"]) for r in thread["replies"]] == [
        ("agent", "Por favor envíe el log."),
        ("customer", "Aquí está."),
    ]
    assert (await client.post(f"{base}/replies", json={"body": "  "}, headers=andina)).status == 400
    # Customers cannot act as agents.
    assert (await client.post(f"{base}/close", headers=andina)).status == 403

    resp = await client.post(f"{base}/close", headers=mesa)
    assert (await resp.json())["status"] == "closed"
    smtp.wait_for("hilo@andina.example", "fue cerrado")
    for action, kwargs in (("replies", {"json": {"body": "hola"}}), ("close", {}), ("cancel", {}), ("assign", {})):
        resp = await client.post(f"{base}/{action}", headers=mesa, **kwargs)
        assert (await api_error(resp))["code"] == "ticket_closed", action
    resp = await client.post(f"{base}/replies", json={"body": "hola"}, headers=andina)
    assert (await api_error(resp))["code"] == "ticket_closed"

    other = await (await open_ticket(client, andina, serial["policy_id"], "otro@andina.example")).json()
    resp = await client.post(f"/api/v1/helpdesk/tickets/{other['id']}/cancel", headers=mesa)
    assert (await resp.json())["status"] == "cancelled"
    resp = await client.post(f"/api/v1/helpdesk/tickets/{other['id']}/replies", json={"body": "x"}, headers=andina)
    assert (await api_error(resp))["code"] == "ticket_cancelled"
    statuses = db_rows(
        config, "SELECT status FROM service_tickets WHERE id IN (?, ?) ORDER BY id", (ticket["id"], other["id"])
    )
    assert statuses == [("closed",), ("cancelled",)]


async def test_rating_only_when_closed_and_only_once(client, config):
    andina = await token_as(client, "andina", "customer")
    mesa = await token_as(client, "mesa")
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "rate@andina.example")).json()
    rating = f"/api/v1/helpdesk/tickets/{ticket['id']}/rating"
    resp = await client.post(rating, json={"rating": 5, "comment": "¡Rápido!"}, headers=andina)
    assert resp.status == 409 and (await api_error(resp))["code"] == "not_closed"
    await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/close", headers=mesa)
    resp = await client.post(rating, json={"rating": 6}, headers=andina)
    assert resp.status == 400 and "rating" in (await api_error(resp))["fields"]
    assert (await client.post(rating, json={"rating": 4}, headers=mesa)).status == 403  # not the agent's to rate
    resp = await client.post(rating, json={"rating": 4, "comment": "Bien"}, headers=andina)
    assert resp.status == 200 and (await resp.json())["rating"] == 4
    resp = await client.post(rating, json={"rating": 1}, headers=andina)
    assert (await api_error(resp))["code"] == "already_rated"
    assert db_rows(config, "SELECT rating, rating_comment FROM service_tickets WHERE id = ?", (ticket["id"],)) == [
        (4, "Bien")
    ]
    cancelled = await (await open_ticket(client, andina, serial["policy_id"], "rate2@andina.example")).json()
    await client.post(f"/api/v1/helpdesk/tickets/{cancelled['id']}/cancel", headers=mesa)
    resp = await client.post(f"/api/v1/helpdesk/tickets/{cancelled['id']}/rating", json={"rating": 3}, headers=andina)
    assert (await api_error(resp))["code"] == "not_closed"


async def test_rating_in_the_portal_page(client, config):
    mesa = await token_as(client, "mesa")
    andina = await token_as(client, "andina", "customer")
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "pagina@andina.example")).json()
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page = await (await client.get(f"/helpdesk/tickets/{ticket['id']}")).text()
    assert 'id="rating-form"' not in page and 'id="reply-form"' in page
    await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/close", headers=mesa)
    page, hidden = await get_form(client, f"/helpdesk/tickets/{ticket['id']}")
    assert 'id="rating-form"' in page and 'id="reply-form"' not in page
    resp = await client.post(f"/helpdesk/tickets/{ticket['id']}/rating", data={**hidden, "rating": ""})
    assert resp.status == 400 and "rating" in field_errors(await resp.text())
    resp = await client.post(
        f"/helpdesk/tickets/{ticket['id']}/rating", data={**hidden, "rating": "5", "comment": "Excelente"}
    )
    page = await resp.text()
    assert 'data-rating="5"' in page and "Excelente" in page and 'id="rating-form"' not in page
    resp = await client.post(f"/helpdesk/tickets/{ticket['id']}/rating", data={**hidden, "rating": "1"})
    assert resp.status == 409 and "already been rated" in await resp.text()


async def test_unique_numbers_under_50_concurrent_creations(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA, max_open_tickets=60)
    responses = await asyncio.gather(
        *(open_ticket(client, andina, serial["policy_id"], f"c{n}@andina.example") for n in range(50))
    )
    assert sorted({r.status for r in responses}) == [201]
    numbers = [(await r.json())["number"] for r in responses]
    assert len(set(numbers)) == 50 and all(NUMBER.match(n) for n in numbers)
    counters = sorted(int(n.split("_")[1]) for n in numbers)
    assert len(set(counters)) == 50
    rows = db_rows(
        config,
        "SELECT COUNT(*), COUNT(DISTINCT number), COUNT(DISTINCT seq) FROM service_tickets WHERE serial_id = ?",
        (serial["id"],),
    )
    assert rows == [(50, 50, 50)]


async def test_concurrent_creations_never_exceed_the_serial_limit(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA, max_open_tickets=3)
    responses = await asyncio.gather(
        *(open_ticket(client, andina, serial["policy_id"], f"l{n}@andina.example") for n in range(10))
    )
    assert sorted(r.status for r in responses) == [201] * 3 + [409] * 7
    assert db_rows(config, "SELECT COUNT(*) FROM service_tickets WHERE serial_id = ?", (serial["id"],)) == [(3,)]


async def test_a_company_cannot_read_or_touch_another_companys_tickets(client, config):
    andina = await token_as(client, "andina", "customer")
    pacifico = await token_as(client, "pacifico")
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "privado@andina.example")).json()
    base = f"/api/v1/helpdesk/tickets/{ticket['id']}"
    assert (await client.get(base, headers=pacifico)).status == 404
    assert (await client.post(f"{base}/replies", json={"body": "hola"}, headers=pacifico)).status == 404
    assert (await client.post(f"{base}/rating", json={"rating": 1}, headers=pacifico)).status == 404
    listed = (await (await client.get("/api/v1/helpdesk/tickets", headers=pacifico)).json())["tickets"]
    assert ticket["number"] not in {t["number"] for t in listed}

    await login(client, "pacifico", language="en")
    assert (await client.get(f"/helpdesk/tickets/{ticket['id']}")).status == 404
    _page, hidden = await get_form(client, "/helpdesk/tickets")
    resp = await client.post(f"/helpdesk/tickets/{ticket['id']}/reply", data={**hidden, "body": "hola"})
    assert resp.status == 404
    assert ticket["number"] not in await (await client.get("/helpdesk/tickets")).text()
    assert db_rows(config, "SELECT COUNT(*) FROM service_replies WHERE ticket_id = ?", (ticket["id"],)) == [(0,)]
    # "agente" is a customer of both: with the Pacífico profile, Andina's ticket does not exist.
    client.session.cookie_jar.clear()
    await login(client, "agente", language="en", profile="Importadora del Pacífico Cía. Ltda.")
    assert (await client.get(f"/helpdesk/tickets/{ticket['id']}")).status == 404


@pytest.mark.parametrize(
    ("lang", "text", "status"), [("es", "hace 20 horas", "Abierto"), ("en", "20 hours ago", "Open")]
)
async def test_created_is_shown_as_relative_time_in_both_languages(client, config, lang, text, status):
    andina = await token_as(client, "andina", "customer")
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], "tiempo@andina.example")).json()
    twenty_hours_ago = (datetime.now(UTC) - timedelta(hours=20, minutes=5)).isoformat(timespec="seconds")
    db_execute(config, "UPDATE service_tickets SET created_at = ? WHERE id = ?", (twenty_hours_ago, ticket["id"]))
    await login(client, "andina", language=lang, profile="Exportadora Andina S.A.")
    page = await (await client.get("/helpdesk/tickets")).text()
    row = re.search(rf'<tr data-ticket="{ticket["id"]}".*?<td class="created"[^>]*>([^<]+)</td>', page, re.S)[1]
    assert row.endswith(f"({text})")
    assert re.search(rf'<tr data-ticket="{ticket["id"]}".*?<span class="badge">{status}</span>', page, re.S)
    api = await (await client.get(f"/api/v1/helpdesk/tickets/{ticket['id']}?lang={lang}", headers=andina)).json()
    assert api["created_ago"] == text


def test_relative_time_takes_now_as_a_parameter():
    now = datetime(2021, 10, 27, 9, 0, tzinfo=UTC)
    assert relative("2021-10-26T13:03:00+00:00", now, "es") == "hace 20 horas"
    assert relative("2021-10-26T13:03:00+00:00", now, "en") == "20 hours ago"
    assert relative("2021-10-21T09:00:00+00:00", now, "es") == "hace 6 días"
    assert relative(now, now, "en") == "1 second ago"


async def test_agent_console_per_area_assign_reply_close(client, config, smtp):
    andina = await token_as(client, "andina", "customer")
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    sales = await (
        await open_ticket(
            client, andina, serial["policy_id"], "ventas@andina.example", area="sales", subject="Cotización"
        )
    ).json()
    support = await (await open_ticket(client, andina, serial["policy_id"], "ti@andina.example")).json()
    await login(client, "mesa", language="en")
    page = await (await client.get("/helpdesk/console?area=sales")).text()
    assert sales["number"] in page and support["number"] not in page
    page = await (await client.get("/helpdesk/console?area=technical_support")).text()
    assert support["number"] in page and sales["number"] not in page
    assert (await client.get("/helpdesk/console?area=nowhere")).status == 404
    assert (await client.get("/helpdesk/tickets")).status == 200  # staff land on the console

    page, hidden = await get_form(client, f"/helpdesk/tickets/{support['id']}")
    assert 'id="agent-actions"' in page and "Exportadora Andina" in page
    resp = await client.post(f"/helpdesk/tickets/{support['id']}/assign", data=hidden)
    assert 'id="ticket-agent">Helena Helpdesk<' in await resp.text()
    resp = await client.post(f"/helpdesk/tickets/{support['id']}/reply", data={**hidden, "body": "Reinicie el equipo."})
    page = await resp.text()
    assert 'data-status="waiting_customer"' in page and "Reinicie el equipo." in page
    smtp.wait_for("ti@andina.example", "nueva respuesta")
    resp = await client.post(f"/helpdesk/tickets/{support['id']}/close", data=hidden)
    assert 'data-status="closed"' in await resp.text()
    smtp.wait_for("ti@andina.example", "fue cerrado")
    resp = await client.post(f"/helpdesk/tickets/{sales['id']}/cancel", data=hidden)
    assert 'data-status="cancelled"' in await resp.text()
    page = await (await client.get("/helpdesk/console?area=sales")).text()
    assert sales["number"] not in page  # the queue shows what is still open
    assert sales["number"] in await (await client.get("/helpdesk/console?area=sales&status=all")).text()
    # Customers have no console.
    client.session.cookie_jar.clear()
    await login(client, "pacifico", language="en")
    assert (await client.get("/helpdesk/console")).status == 403
