"""A change and the mail it causes are kept or dropped together: the mail is queued in the change's transaction.

Queued in a transaction of its own after the change, a mail that could not be queued (the
database refusing that one insert: a full disk, a lost connection) left the change without its
mail: a registration was kept, its receipt never sent, and registering again said the user name
was taken. Here the database itself refuses the outbox's inserts (a trigger, as a full disk
would), and the registration must not be kept either; once the outbox takes mail again, the same
registration goes through and its mail arrives.
"""

from __future__ import annotations

from server.db import direct_connection
from tests.dbaccess import db_rows
from tests.helpdesk_support import ANDINA
from tests.helpers import api_human
from tests.mailbox import outbox

PASSWORD = "Puerto2026seguro"
EMAIL = "rosa@andina.example"


def _refuse_mail(config, refuse: bool) -> None:  # noqa: ANN001
    """Make the database refuse (or take again) every new row of the mail outbox."""
    with direct_connection(config.db_url) as db:
        if db.dialect.name == "sqlite":
            if refuse:
                db.execute(
                    "CREATE TRIGGER refuse_mail BEFORE INSERT ON mail_outbox BEGIN SELECT RAISE(ABORT, 'no room'); END"
                )
            else:
                db.execute("DROP TRIGGER refuse_mail")
        elif refuse:
            db.execute(
                "CREATE FUNCTION refuse_mail() RETURNS trigger LANGUAGE plpgsql AS "
                "'BEGIN RAISE EXCEPTION ''no room'' USING ERRCODE = ''disk_full''; END'"
            )
            db.execute(
                "CREATE TRIGGER refuse_mail BEFORE INSERT ON mail_outbox FOR EACH ROW EXECUTE FUNCTION refuse_mail()"
            )
        else:
            db.execute("DROP TRIGGER refuse_mail ON mail_outbox")


async def _register(client):  # noqa: ANN001, ANN202
    body = {
        "full_name": "Rosa Ríos",
        "username": "rosa",
        "email": EMAIL,
        "email_confirm": EMAIL,
        "tax_id": ANDINA,
        "phone": "+593991112233",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        **(await api_human(client)),
    }
    return await client.post("/api/v1/registration", json=body)


async def test_a_registration_whose_mail_cannot_be_queued_is_not_kept_and_can_be_made_again(client, config, smtp):
    _refuse_mail(config, True)
    resp = await _register(client)
    assert resp.status >= 500, await resp.text()
    assert db_rows(config, "SELECT COUNT(*) FROM users WHERE username = 'rosa'") == [(0,)]
    assert outbox(config) == []

    _refuse_mail(config, False)
    resp = await _register(client)
    assert resp.status == 201, await resp.text()
    smtp.wait_for(EMAIL, "registro recibido")
    assert len(smtp.to(EMAIL)) == 1
