"""Mail never fails a saved change: header-safe messages, and an outbox that delivers them later.

Real app, real SQLite file, real aiosmtpd: one that is down at first, or that refuses until told
otherwise, and comes up on the same port during the test.
"""

from __future__ import annotations

import email
import email.policy
import time
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from server.app import create_app
from server.config import Config, MailConfig, SecurityConfig
from server.db import Database
from server.demo import install_demo
from server.mail import Mail, Mailer
from server.mail_outbox import (
    MAX_ATTEMPTS,
    RETRY_FIRST_SECONDS,
    RETRY_MAX_SECONDS,
    claim_due,
    list_undelivered,
    queue_message,
    record_failure,
    retry_now,
    write_with_mail,
)
from tests.helpdesk_support import ANDINA, new_serial, open_ticket, token_as
from tests.helpers import db_rows, get_form, login
from tests.mailbox import Mailbox, free_port, wait_for_outbox, wait_until_delivered

SEPARATORS = "Báscula\u2028no\u2029pesa"  # LINE SEPARATOR, PARAGRAPH SEPARATOR
ONE_LINE = "Báscula no pesa"


class LateMailbox(Mailbox):
    """An SMTP inbox that is down (``start()`` brings it up) or refuses every message while ``refusing``."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.refusing = False
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._started = False

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        if self.refusing:
            return "451 4.3.0 Mailbox busy, try again later"
        return await super().handle_DATA(server, session, envelope)

    def start(self) -> None:
        self._controller.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._controller.stop()


@pytest.fixture
def late_smtp():
    mailbox = LateMailbox()
    yield mailbox
    mailbox.stop()


def mail_config(tmp_path: Path, port: int) -> Config:
    return Config(
        data_dir=str(tmp_path / "data"),
        support_email="soporte@terminal.example",
        mail=MailConfig(backend="smtp", host="127.0.0.1", port=port),
        security=SecurityConfig(secret_key="test-secret"),
    )


@pytest.fixture
def late_config(tmp_path: Path, late_smtp: LateMailbox) -> Config:
    return mail_config(tmp_path, late_smtp.port)


@pytest.fixture
async def late_client(late_config, aiohttp_client):
    """The real app whose SMTP server is not there yet (the app stops first: its mail job may be sending)."""
    app = create_app(late_config)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def outbox_rows(client) -> list[dict[str, str]]:
    """The administrator's outbox page, row by row (the client is signed in as the administrator)."""
    resp = await client.get("/admin/mail")
    assert resp.status == 200
    page = await resp.text()
    rows = []
    for chunk in page.split("<tr data-mail-id=")[1:]:
        cells = [c.split("</td>")[0] for c in chunk.split("<td")[1:]]
        texts = [c.split(">", 1)[1] for c in cells]
        rows.append(
            {
                "id": chunk.split('"')[1],
                "state": chunk.split('data-state="')[1].split('"')[0],
                "to": texts[1],
                "subject": texts[2],
                "status": texts[3],
                "attempts": texts[4],
                "error": texts[5],
            }
        )
    return rows


async def wait_for_attempt(client, config, to: str) -> dict[str, str]:
    """The outbox row for ``to`` once an attempt to deliver it failed (as the administrator sees it)."""
    await wait_for_outbox(
        config, lambda rows: any(to in r["recipient"] and r["last_error"] for r in rows), f"a failed attempt to {to}"
    )
    rows = [r for r in await outbox_rows(client) if to in r["to"]]
    assert len(rows) == 1, rows
    return rows[0]


async def add_company_user(client, headers: dict[str, str], full_name: str, username: str):
    """A customer administrator adds ``username`` (mail at andina.example) through the API."""
    address = f"{username}@andina.example"
    return await client.post(
        "/api/v1/company/users",
        json={
            "full_name": full_name,
            "username": username,
            "email": address,
            "email_confirm": address,
            "roles": ["customer"],
        },
        headers=headers,
    )


async def test_line_separators_in_a_ticket_subject_never_fail_the_ticket_or_its_mail(client, config, smtp):
    andina = await token_as(client, "andina", "customer")
    mesa = await token_as(client, "mesa")
    serial = await new_serial(client, await token_as(client, "admin"), config, ANDINA)
    resp = await open_ticket(client, andina, serial["policy_id"], "rara@andina.example", subject=SEPARATORS)
    assert resp.status == 201, await resp.text()
    ticket = await resp.json()
    opened = smtp.wait_for("rara@andina.example", f"[{ticket['number']}]")
    assert ONE_LINE in opened["Subject"] and "\n" not in str(opened["Subject"])

    base = f"/api/v1/helpdesk/tickets/{ticket['id']}"
    resp = await client.post(f"{base}/replies", json={"body": "Revise el cable."}, headers=mesa)
    assert resp.status in (200, 201), await resp.text()
    reply = smtp.wait_for("rara@andina.example", "nueva respuesta")
    assert ONE_LINE in reply["Subject"] and "Revise el cable." in reply.get_content()
    resp = await client.post(f"{base}/close", headers=mesa)
    assert resp.status == 200 and (await resp.json())["status"] == "closed"
    closed = smtp.wait_for("rara@andina.example", "fue cerrado")
    assert ONE_LINE in closed["Subject"]
    # Every header is on one line, as a mail client parses it.
    for mail in (opened, reply, closed):
        assert all("\u2028" not in str(value) and "\u2029" not in str(value) for value in mail.values())


async def test_a_company_name_with_line_separators_never_fails_adding_a_user(client, config, smtp):
    await login(client, "admin", language="en")
    _page, hidden = await get_form(client, "/billing/companies")
    name = "Exportadora\u2028Andina\u2029S.A."
    resp = await client.post(
        "/billing/companies",
        data={**hidden, "tax_id": ANDINA, "name": name, "emails": "facturas@andina.example"},
    )
    assert resp.status == 200
    assert db_rows(config, "SELECT name FROM companies WHERE tax_id = ?", (ANDINA,)) == [(name,)]

    andina = await token_as(client, "andina", "customer_admin")
    resp = await add_company_user(client, andina, "Nadia\u2028Nueva", "nadia")
    assert resp.status == 201, await resp.text()
    invitation = smtp.wait_for("nadia@andina.example")
    assert "Exportadora Andina S.A." in invitation["Subject"]
    assert "/password/set?token=" in invitation.get_content()


async def test_with_the_mail_server_down_a_ticket_is_saved_and_its_mail_goes_out_once_it_is_back(
    late_client, late_config, late_smtp
):
    client = late_client
    await login(client, "admin", language="en")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, await token_as(client, "admin"), late_config, ANDINA)
    resp = await open_ticket(client, andina, serial["policy_id"], "paciente@andina.example")
    assert resp.status == 201, await resp.text()
    ticket = await resp.json()

    row = await wait_for_attempt(client, late_config, "paciente@andina.example")
    assert row["state"] == "retrying" and row["status"] == "Retrying"
    assert int(row["attempts"]) >= 1 and row["error"]  # the connection error, for the administrator
    assert ticket["number"] in row["subject"]

    late_smtp.start()
    mail = late_smtp.wait_for("paciente@andina.example", f"[{ticket['number']}]", timeout=RETRY_FIRST_SECONDS * 4)
    assert "El sistema no abre" in mail["Subject"]
    await wait_until_delivered(late_config)
    assert await outbox_rows(client) == []
    assert len(late_smtp.to("paciente@andina.example")) == 1


async def test_with_the_mail_server_down_a_company_user_is_added_and_invited_later(late_client, late_config, late_smtp):
    client = late_client
    await login(client, "admin", language="en")
    andina = await token_as(client, "andina", "customer_admin")
    resp = await add_company_user(client, andina, "Pablo Paciente", "pablo")
    assert resp.status == 201, await resp.text()
    assert db_rows(late_config, "SELECT status FROM users WHERE username = 'pablo'") == [("active",)]
    await wait_for_attempt(client, late_config, "pablo@andina.example")

    late_smtp.start()
    invitation = late_smtp.wait_for("pablo@andina.example", timeout=RETRY_FIRST_SECONDS * 4)
    assert "/password/set?token=" in invitation.get_content()


async def test_a_refused_mail_is_shown_to_the_administrator_and_retry_now_sends_it(late_client, late_config, late_smtp):
    client = late_client
    late_smtp.refusing = True
    late_smtp.start()
    await login(client, "admin", language="en")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, await token_as(client, "admin"), late_config, ANDINA)
    resp = await open_ticket(client, andina, serial["policy_id"], "rechazo@andina.example")
    assert resp.status == 201, await resp.text()

    row = await wait_for_attempt(client, late_config, "rechazo@andina.example")
    assert "Mailbox busy, try again later" in row["error"]
    due = db_rows(late_config, "SELECT next_attempt_at FROM mail_outbox WHERE id = ?", (int(row["id"]),))[0][0]
    # The Spanish page names the states too.
    await client.get("/lang/es")
    page = await (await client.get("/admin/mail")).text()
    assert "Reintentando" in page and 'href="/admin/mail" aria-current="page">Correo saliente' in page

    late_smtp.refusing = False
    _page, hidden = await get_form(client, "/admin/mail")
    resp = await client.post(f"/admin/mail/{row['id']}/retry", data=hidden)
    assert resp.status == 200  # back on the outbox page
    late_smtp.wait_for("rechazo@andina.example", timeout=RETRY_FIRST_SECONDS)
    assert time.time() < due, "delivered by the retry, not by the scheduled attempt"
    resp = await client.post("/admin/mail/999999/retry", data=hidden)
    assert resp.status == 404


async def test_only_the_administrator_sees_the_outbox(client):
    resp = await client.get("/admin/mail", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    assert (await client.get("/admin/mail")).status == 403
    assert 'href="/admin/mail"' not in await (await client.get("/home")).text()
    _page, hidden = await get_form(client, "/company/users")
    assert (await client.post("/admin/mail/1/retry", data=hidden)).status == 403


async def test_two_server_processes_sharing_the_database_send_each_mail_once(late_smtp, tmp_path, aiohttp_client):
    config = mail_config(tmp_path, late_smtp.port)
    first = create_app(config)
    first.on_startup.append(install_demo)
    first_client = await aiohttp_client(first)
    second_client = await aiohttp_client(create_app(config))
    for n in range(12):
        notice = Mail(f"cliente{n}@andina.example", f"Aviso {n}", "Hola")
        await write_with_mail(first_client.app, lambda db: None, mail=lambda _, notice=notice: [notice])
    await wait_for_outbox(
        config, lambda rows: len(rows) == 12 and all(r["last_error"] for r in rows), "twelve failed attempts"
    )

    # Both processes' jobs find the same twelve messages due at the next retry.
    late_smtp.start()
    # A row leaves the outbox only after its delivery: a duplicate would have arrived by then.
    await wait_until_delivered(config, timeout=RETRY_FIRST_SECONDS * 4)
    sent = sorted(str(m["To"]) for m in late_smtp.messages)
    assert sent == sorted(f"cliente{n}@andina.example" for n in range(12))
    assert second_client.app is not first_client.app


async def test_the_demo_folder_backend_gets_the_mail_through_the_outbox(aiohttp_client, tmp_path):
    config = replace(mail_config(tmp_path, free_port()), mail=MailConfig(backend="folder"))
    app = create_app(config)
    app.on_startup.append(install_demo)
    client = await aiohttp_client(app)
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, await token_as(client, "admin"), config, ANDINA)
    resp = await open_ticket(client, andina, serial["policy_id"], "demo@andina.example", subject=SEPARATORS)
    assert resp.status == 201, await resp.text()
    await wait_until_delivered(config)
    [written] = config.mail_folder.glob("*.eml")
    mail = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "demo@andina.example" and ONE_LINE in mail["Subject"]


async def test_retries_back_off_then_give_up_until_the_administrator_retries(tmp_path):
    db = Database(tmp_path / "portgate.db")
    db.migrate()
    try:
        mailer = Mailer(MailConfig(), tmp_path / "mail")
        now = 1_000_000.0
        await db.write(queue_message, mailer.build("x@andina.example", "Aviso", "Hola"), now)
        pauses = []
        for _attempt in range(MAX_ATTEMPTS - 1):
            [(mail_id, _raw)] = await db.write(claim_due, now)
            assert await db.write(claim_due, now) == []  # claimed: nobody else takes it meanwhile
            await db.write(record_failure, mail_id, "451 busy", now)
            [entry] = await db.read(list_undelivered, now)
            assert entry.state == "retrying"
            due = entry.next_attempt_at.timestamp()
            pauses.append(due - now)
            assert await db.write(claim_due, due - 0.001) == []
            now = due
        assert pauses[:4] == [5.0, 10.0, 20.0, 40.0] and max(pauses) == RETRY_MAX_SECONDS
        [(mail_id, _raw)] = await db.write(claim_due, now)
        await db.write(record_failure, mail_id, "451 busy", now)
        [entry] = await db.read(list_undelivered, now)
        assert (entry.state, entry.attempts, entry.last_error) == ("failed", MAX_ATTEMPTS, "451 busy")
        assert await db.write(claim_due, now + 10 * RETRY_MAX_SECONDS) == []  # given up
        assert await db.write(retry_now, mail_id, now + 1)
        assert [m for m, _ in await db.write(claim_due, now + 1)] == [mail_id]
    finally:
        db.close()
