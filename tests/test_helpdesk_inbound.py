"""Replies by e-mail: real SMTP into the server's inbound receiver (aiosmtpd), filed into the thread."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import pytest

from server.app import create_app
from server.demo import install_demo
from server.helpdesk.inbound import strip_quoted
from server.helpdesk.settings import HELPDESK_SETTINGS
from tests.helpdesk_support import ANDINA, company_id, new_serial, open_ticket, png_bytes, stored_files, token_as
from tests.helpers import db_rows
from tests.mailbox import free_port


@pytest.fixture
async def client(config, aiohttp_client):
    """The real app listening for replies by e-mail on a free port."""
    app = create_app(config)
    app[HELPDESK_SETTINGS] = replace(app[HELPDESK_SETTINGS], inbound_smtp_port=free_port())
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def reply_to(original: EmailMessage, sender: str, text: str, *, to: str | None = None) -> EmailMessage:
    """What a mail program sends when the customer presses "Reply" and types ``text``."""
    message = EmailMessage()
    message["From"] = f"Carla Andina <{sender}>"
    message["To"] = to or str(original["Reply-To"])
    message["Subject"] = "Re: " + str(original["Subject"])
    message["Message-ID"] = make_msgid(domain="andina.example")
    message["In-Reply-To"] = str(original["Message-ID"])
    quoted = "\n".join("> " + line for line in original.get_content().splitlines())
    message.set_content(f"{text}\n\nEl lun, 26 oct 2026 a las 13:03, Portgate escribió:\n{quoted}\n")
    return message


async def deliver(client, message: EmailMessage) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=client.app[HELPDESK_SETTINGS].inbound_smtp_port)


async def opened_ticket(client, config, smtp, email: str = "buzon@andina.example"):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (await open_ticket(client, andina, serial["policy_id"], email)).json()
    return ticket, andina, smtp.wait_for(email, f"[{ticket['number']}]")


async def test_a_reply_by_email_lands_in_the_thread_with_its_attachment(client, config, smtp):
    ticket, andina, opened = await opened_ticket(client, config, smtp)
    mesa = await token_as(client, "mesa")
    await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/replies", json={"body": "¿Tiene el log?"}, headers=mesa)
    agent_mail = smtp.wait_for("buzon@andina.example", "nueva respuesta")
    assert agent_mail["Reply-To"] == opened["Reply-To"]

    message = reply_to(agent_mail, "buzon@andina.example", "Sí, adjunto la captura.\nSaludos")
    message.add_attachment(png_bytes(), maintype="image", subtype="png", filename="captura.png")
    await deliver(client, message)

    thread = await (await client.get(f"/api/v1/helpdesk/tickets/{ticket['id']}", headers=andina)).json()
    last = thread["replies"][-1]
    assert last["via"] == "email" and last["author_role"] == "customer"
    assert last["body"] == "Sí, adjunto la captura.\nSaludos"  # the quoted message is cut off
    assert [f["name"] for f in last["attachments"]] == ["captura.png"]
    assert (await (await client.get(last["attachments"][0]["url"], headers=andina)).read()) == png_bytes()
    assert thread["status"] == "open"  # the customer answered the agent


async def test_the_number_in_the_subject_is_enough_when_the_address_has_no_token(client, config, smtp):
    ticket, andina, opened = await opened_ticket(client, config, smtp, "sinclave@andina.example")
    message = reply_to(opened, "sinclave@andina.example", "Otra información.", to="soporte@terminal.example")
    await deliver(client, message)
    replies = db_rows(config, "SELECT body, via FROM service_replies WHERE ticket_id = ?", (ticket["id"],))
    assert replies == [("Otra información.", "email")]


async def test_the_customer_users_own_address_may_reply_too(client, config, smtp):
    ticket, _andina, opened = await opened_ticket(client, config, smtp, "otra@andina.example")
    await deliver(client, reply_to(opened, "carla@andina.example", "Respondo desde mi correo."))
    rows = db_rows(config, "SELECT author_name FROM service_replies WHERE ticket_id = ?", (ticket["id"],))
    assert rows == [("Carla Andina",)]


async def test_a_stranger_cannot_write_into_a_ticket(client, config, smtp):
    ticket, _andina, opened = await opened_ticket(client, config, smtp)
    message = reply_to(opened, "intruso@evil.example", "Cambie la cuenta bancaria.")
    message.add_attachment(png_bytes(), maintype="image", subtype="png", filename="x.png")
    files_before = len(stored_files(config))
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await deliver(client, message)
    assert refused.value.code == 550
    assert db_rows(config, "SELECT COUNT(*) FROM service_replies WHERE ticket_id = ?", (ticket["id"],)) == [(0,)]
    assert len(stored_files(config)) == files_before


async def test_unknown_tickets_foreign_addresses_and_closed_tickets_are_refused(client, config, smtp):
    ticket, _andina, opened = await opened_ticket(client, config, smtp)
    unknown = reply_to(opened, "buzon@andina.example", "hola", to="soporte+0123456789abcdef01234567@terminal.example")
    del unknown["Subject"]
    unknown["Subject"] = "Re: sin número"
    with pytest.raises(aiosmtplib.SMTPDataError):
        await deliver(client, unknown)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await deliver(client, reply_to(opened, "buzon@andina.example", "hola", to="ventas@otro.example"))
    mesa = await token_as(client, "mesa")
    await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/close", headers=mesa)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await deliver(client, reply_to(opened, "buzon@andina.example", "¿Sigue ahí?"))
    assert "closed" in refused.value.message
    assert db_rows(config, "SELECT COUNT(*) FROM service_replies WHERE ticket_id = ?", (ticket["id"],)) == [(0,)]


async def test_a_message_delivered_twice_is_filed_once(client, config, smtp):
    ticket, _andina, opened = await opened_ticket(client, config, smtp)
    message = reply_to(opened, "buzon@andina.example", "Una sola vez.")
    await deliver(client, message)
    await deliver(client, message)  # the sending server retried
    assert db_rows(config, "SELECT COUNT(*) FROM service_replies WHERE ticket_id = ?", (ticket["id"],)) == [(1,)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Gracias.\n\nEl lun, 26 oct 2026 a las 13:03, Portgate\n<no-reply@x> escribió:\n> hola", "Gracias."),
        ("Thanks!\nOn Mon, Oct 26, 2026 at 1:03 PM Portgate wrote:\n> hi", "Thanks!"),
        ("Listo\n-----Mensaje original-----\nDe: Portgate", "Listo"),
        ("Arriba\n> citado\nabajo", "Arriba\nabajo"),
        ("Texto\n-- \nFirma de Carla", "Texto"),
        ("Ok\r\n\r\nFrom: Portgate <no-reply@x>\r\nSent: lunes", "Ok"),
    ],
)
def test_quoted_text_is_stripped(text, expected):
    assert strip_quoted(text) == expected


@pytest.mark.parametrize("broken", ["From: <\r\n", "From: Carla <buzon@andina.example>\r\nMessage-ID: <\r\n"])
async def test_a_message_with_unreadable_headers_is_refused_for_good_not_retried(client, broken):
    raw = (broken + "To: soporte@terminal.example\r\nSubject: Re: [S_1_X]\r\n\r\nHola\r\n").encode()
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await aiosmtplib.send(
            raw,
            sender="buzon@andina.example",
            recipients=["soporte@terminal.example"],
            hostname="127.0.0.1",
            port=client.app[HELPDESK_SETTINGS].inbound_smtp_port,
        )
    assert refused.value.code == 550  # a permanent refusal: the sender does not retry for days


async def test_a_user_removed_from_the_company_can_no_longer_reply_by_email(client, config, smtp):
    """Marta works for Andina and Pacífico; Andina removes her: her own address no longer writes
    into Andina's tickets, neither as the one who opened it nor as its follow-up address."""
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    marta = await token_as(client, "agente")
    profiles = (await (await client.get("/api/v1/profiles", headers=marta)).json())["profiles"]
    at_andina = next(p for p in profiles if p["company_id"] == company_id(config, ANDINA))
    assert (await client.post("/api/v1/profiles/select", json={"profile_id": at_andina["id"]}, headers=marta)).ok
    tickets = []
    for follow_up in ("marta@agencia.example", "bodega@andina.example"):
        ticket = await (await open_ticket(client, marta, serial["policy_id"], follow_up)).json()
        tickets.append((ticket, smtp.wait_for(follow_up, f"[{ticket['number']}]")))
    (own, own_mail), (other, other_mail) = tickets
    # While she is at Andina, her replies are filed.
    await deliver(client, reply_to(own_mail, "marta@agencia.example", "Primera respuesta."))
    carla = await token_as(client, "andina", "customer_admin")
    marta_id = db_rows(config, "SELECT id FROM users WHERE username = 'agente'")[0][0]
    assert (await client.delete(f"/api/v1/company/users/{marta_id}", headers=carla)).status == 200
    for ticket_mail in (own_mail, other_mail):
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await deliver(client, reply_to(ticket_mail, "marta@agencia.example", "Sigo aquí."))
        assert refused.value.code == 550
    # The company's own follow-up address still works.
    await deliver(client, reply_to(other_mail, "bodega@andina.example", "Recibido, gracias."))
    rows = db_rows(
        config, "SELECT ticket_id, body FROM service_replies WHERE ticket_id IN (?, ?)", (own["id"], other["id"])
    )
    assert sorted(rows) == sorted([(own["id"], "Primera respuesta."), (other["id"], "Recibido, gracias.")])


async def test_a_follow_up_address_that_is_another_companys_user_still_replies(client, config, smtp):
    """The follow-up address is whoever the customer chose (a forwarder at another firm, say)."""
    ticket, _andina, opened = await opened_ticket(client, config, smtp, "pedro@pacifico.example")
    await deliver(client, reply_to(opened, "pedro@pacifico.example", "Soy el agente de carga."))
    rows = db_rows(config, "SELECT body FROM service_replies WHERE ticket_id = ?", (ticket["id"],))
    assert rows == [("Soy el agente de carga.",)]
