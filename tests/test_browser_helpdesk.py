"""The helpdesk in Chromium against a real server process with real SMTP both ways.

Customer opens a service ticket with an attachment → agent replies (e-mail to the customer) →
customer replies by e-mail into the server's inbound SMTP port → agent sees it and closes →
customer rates; and the customer downloads the machine list of a serial as CSV.
"""

from __future__ import annotations

import csv
import io
import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from playwright.sync_api import expect

from server.demo import DEMO_PASSWORD
from tests.browser import RunningServer, answer_human_check, demo_server
from tests.helpdesk_support import PACIFICO_SERIAL, png_bytes
from tests.mailbox import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def helpdesk_server(tmp_path_factory, browser_smtp, live_database_url) -> Iterator[tuple[RunningServer, int]]:
    """The demo server on each engine, also receiving replies by e-mail on its inbound SMTP port."""
    inbound = free_port()
    browser_smtp.messages.clear()  # the module's server on the other engine mailed here too
    data_dir = tmp_path_factory.mktemp("helpdesk") / "data"
    inbound_port = {"PORTGATE_HELPDESK__INBOUND_SMTP_PORT": str(inbound)}
    with demo_server(data_dir, browser_smtp.port, live_database_url, **inbound_port) as server:
        yield server, inbound


@pytest.fixture
def open_page(chromium, helpdesk_server):
    contexts = []

    def make():
        context = chromium.new_context(base_url=helpdesk_server[0].url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page, login: str, lang: str = "en", company: str | None = None) -> None:
    page.goto("/login")
    page.select_option("#f-language", lang)
    page.fill("#f-login", login)
    page.fill("#f-password", DEMO_PASSWORD)
    answer_human_check(page)
    page.click("#submit")
    expect(page).to_have_url(re.compile(r"/profiles"))
    if company:
        page.locator("label.profile-option", has_text=company).first.click()
        page.click("#enter")


def test_service_ticket_round_trip_with_a_reply_by_email(open_page, helpdesk_server, browser_smtp):
    _server, inbound = helpdesk_server
    customer = open_page()
    log_in(customer, "pacifico")

    # 1. The customer generates a ticket from a policy, with a screenshot attached.
    customer.goto("/helpdesk/tickets")
    customer.click("#generate-ticket")
    row = customer.locator("#policies tr", has_text=PACIFICO_SERIAL)
    row.locator("a.choose").click()
    expect(customer.locator("#policy-serial")).to_contain_text(PACIFICO_SERIAL)
    customer.select_option("#f-area", "technical_support")
    customer.fill("#f-subject", "No imprime los tickets")
    customer.fill("#f-email", "pedro@pacifico.example")
    customer.fill("#f-email_confirm", "pedro@pacifico.example")
    customer.fill("#f-phone", "+593 99 765 4321")
    customer.fill("#f-phone_confirm", "+593 99 765 4321")
    customer.fill("#f-contact_hours", "Mañanas")
    customer.fill("#f-description", "Al imprimir sale en blanco.\nAdjunto captura.")
    customer.set_input_files(
        "#f-attachments", files=[{"name": "captura.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    customer.screenshot(path="/tmp/portgate-helpdesk-new.png", full_page=True)
    customer.click("#submit-ticket")
    expect(customer.locator("#ticket-status")).to_have_attribute("data-status", "open")
    number = customer.locator("#ticket-number").inner_text()
    assert re.fullmatch(r"S_\d+_\d{14}", number)
    ticket_url = customer.url.split("?")[0]
    with customer.expect_download() as download:
        customer.locator("a.attachment", has_text="captura.png").click()
    assert download.value.suggested_filename == "captura.png"
    with open(download.value.path(), "rb") as fh:
        assert fh.read() == png_bytes()
    browser_smtp.wait_for("pedro@pacifico.example", f"[{number}]")

    # 2. The agent finds it in the technical support queue and replies.
    agent = open_page()
    log_in(agent, "mesa")
    agent.goto("/helpdesk/console?area=technical_support")
    agent.locator("#queue a.number", has_text=number).click()
    agent.click("#assign")
    expect(agent.locator("#ticket-agent")).to_have_text("Helena Helpdesk")
    agent.fill("#f-body", "¿Qué impresora usa? Envíe una foto de la configuración.")
    agent.click("#send-reply")
    expect(agent.locator("#ticket-status")).to_have_attribute("data-status", "waiting_customer")

    # 3. The customer answers the agent's e-mail from the mail program.
    agent_mail = browser_smtp.wait_for("pedro@pacifico.example", "new reply")
    assert "¿Qué impresora usa?" in agent_mail.get_content()
    answer = EmailMessage()
    answer["From"] = "Pedro Pacífico <pedro@pacifico.example>"
    answer["To"] = agent_mail["Reply-To"]
    answer["Subject"] = "Re: " + agent_mail["Subject"]
    answer["Message-ID"] = make_msgid(domain="pacifico.example")
    quoted = "\n".join("> " + line for line in agent_mail.get_content().splitlines())
    answer.set_content(f"Una Epson TM-T20, adjunto la configuración.\n\nOn Tue, Portgate wrote:\n{quoted}\n")
    answer.add_attachment(b"modelo=TM-T20\npapel=80mm\n", maintype="text", subtype="plain", filename="config.txt")
    with smtplib.SMTP("127.0.0.1", inbound, timeout=10) as smtp:
        smtp.send_message(answer)

    # 4. The agent sees the e-mailed reply in the thread and closes the ticket.
    agent.reload()
    by_mail = agent.locator("#replies article[data-via='email']")
    expect(by_mail).to_have_count(1)
    expect(by_mail.locator(".reply-body")).to_have_text("Una Epson TM-T20, adjunto la configuración.")
    expect(by_mail.locator("a.attachment")).to_have_text(re.compile("config.txt"))
    expect(agent.locator("#ticket-status")).to_have_attribute("data-status", "open")
    agent.screenshot(path="/tmp/portgate-helpdesk-thread.png", full_page=True)
    agent.click("#close-ticket")
    # Closing is asked for first, saying what will happen; the ticket is still open until confirmed.
    expect(agent.locator("#finish-consequences")).to_contain_text("pedro@pacifico.example")
    agent.click("#confirm-finish-button")
    expect(agent.locator("#ticket-status")).to_have_attribute("data-status", "closed")
    expect(agent.locator(".alert-success")).to_contain_text("is closed")
    agent.reload()  # Refresh after the post: nothing is sent again and the message is not repeated
    expect(agent.locator(".alert-success")).to_have_count(0)
    browser_smtp.wait_for("pedro@pacifico.example", "was closed")

    # 5. The customer rates the closed ticket, once.
    customer.goto(ticket_url)
    expect(customer.locator("#replies article")).to_have_count(2)
    customer.select_option("#f-rating", "5")
    customer.fill("#f-comment", "Muy buena atención")
    customer.click("#send-rating")
    expect(customer.locator("#rating-value")).to_have_attribute("data-rating", "5")
    expect(customer.locator("#rating-form")).to_have_count(0)
    customer.goto("/helpdesk/tickets")
    expect(customer.locator(f"#tickets tr:has-text('{number}')")).to_have_attribute("data-status", "closed")


def test_download_the_machine_list_as_csv(open_page):
    page = open_page()
    log_in(page, "andina", company="Exportadora Andina S.A.")
    page.goto("/licences")
    page.locator("#serials tr", has_text="8092589D-737B-4742-BCD3-265E11BD29B9").locator("a.button-link").click()
    shown = {
        (row.get_attribute("data-active"), row.locator("code").inner_text())
        for row in page.locator("#machines tbody tr[data-machine]").all()
    }
    page.screenshot(path="/tmp/portgate-licence-machines.png", full_page=True)
    with page.expect_download() as download:
        page.click("#download-csv")
    assert download.value.suggested_filename == "machines-8092589D-737B-4742-BCD3-265E11BD29B9.csv"
    with open(download.value.path(), encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    assert {r["serial"] for r in rows} == {"8092589D-737B-4742-BCD3-265E11BD29B9"}
    assert {(r["name"], r["fingerprint"], r["status"]) for r in rows} == {
        ("ANDINA-CONTAB-01", "FP-A1-0001", "active"),
        ("ANDINA-GERENCIA", "FP-A1-0002", "active"),
        ("ANDINA-OLD", "FP-A1-0003", "inactive"),
    }
    # The page lists the active ones; the CSV has every machine.
    assert shown == {("1", "FP-A1-0001"), ("1", "FP-A1-0002")}
