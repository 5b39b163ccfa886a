"""A sign-in checks its password (argon2, slow on purpose) outside any transaction, and decides on the new state.

A sign-in by a company's tax id checks the typed password against each of the company's accounts
(up to 10 argon2 checks, about a second on this box): while that ran inside the sign-in's write
transaction, every other write waited, and on SQLite that is every gate's redeem. The write that
decides reads the account again, locked, so a password change or a deactivation committed while
the password was being checked is what the sign-in decides on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from server.accounts import passwords, registration, sessions, user_admin
from server.db import direct_connection, scalar
from server.security import hash_password
from server.web import DB
from tests.dbaccess import db_rows, until_lock_waiters
from tests.gate_support import enrol_kiosk, make_tickets, scan
from tests.helpdesk_support import ANDINA
from tests.helpers import api_login

PASSWORD = "Puerto2026seguro"


async def _fill_tax_id(app) -> None:
    """The company of ``ANDINA`` with as many accounts as a sign-in by tax id checks (all one password)."""
    password_hash = hash_password(PASSWORD)
    have = await app[DB].read(lambda db: len(sessions._accounts_of_tax_id(db, ANDINA)))
    for n in range(sessions.MAX_ACCOUNTS_PER_TAX_ID - have):
        values = {
            "full_name": f"Cuenta {n}",
            "username": f"cuenta{n}",
            "email": f"cuenta{n}@andina.example",
            "phone": "+593991112233",
            "tax_id": ANDINA,
        }
        await app[DB].write(registration.register_user, values, password_hash, "es", time.time())


async def test_a_redeem_during_a_sign_in_is_answered_long_before_the_sign_in_finishes(client):
    app = client.server.app
    await _fill_tax_id(app)
    kiosk = await enrol_kiosk(client, "Puerta 1")
    tickets = await make_tickets(app, 60)

    started = time.monotonic()
    signing_in = asyncio.ensure_future(api_login(client, ANDINA, "Otra2026clave"))  # checked against 10 accounts
    waits = []
    for ticket in tickets:
        if signing_in.done():
            break
        asked = time.monotonic()
        resp = await client.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"])
        assert resp.status == 200 and (await resp.json())["accepted"], await resp.text()
        waits.append(time.monotonic() - asked)
    resp = await signing_in
    signing_in_seconds = time.monotonic() - started
    assert resp.status == 401, await resp.text()

    # Orders of magnitude: a redeem is milliseconds, ten argon2 checks most of a second.
    assert len(waits) >= 3, (waits, signing_in_seconds)
    assert max(waits) < signing_in_seconds / 5, (waits, signing_in_seconds)


@contextlib.contextmanager
def _account_held(config, username: str):  # noqa: ANN001, ANN202
    """A transaction of another node holding the account (SQLite: the write lock) until the block ends."""
    with direct_connection(config.db_url) as db:
        db.execute(db.dialect.begin)
        user_id = scalar(db, "SELECT id FROM users WHERE username = ?" + db.dialect.for_update, (username,))
        try:
            yield db, user_id
        finally:
            db.execute("COMMIT")


async def _until_the_sign_in_waits(config, signing_in: asyncio.Future) -> None:  # noqa: ANN001
    """Until the sign-in (its password checked) waits for the held account.

    PostgreSQL shows the waiting statement; SQLite shows nothing of a writer waiting for its lock,
    so there the wait is a pause long enough for the check (the outcome must hold either way).
    """
    if not config.db_url.startswith("postgresql"):
        await asyncio.sleep(1.5)
        return
    await until_lock_waiters(config, 1, [signing_in], "the sign-in never waited for the account")


async def test_a_sign_in_racing_a_password_change_never_signs_in_with_the_old_password(client, config):
    signing_in = None
    with _account_held(config, "pacifico") as (db, user_id):
        signing_in = asyncio.ensure_future(api_login(client, "pacifico"))  # the demo password, about to change
        await _until_the_sign_in_waits(config, signing_in)
        passwords.set_password_hash(db, user_id, hash_password("Nueva2026clave"), time.time())
    resp = await signing_in
    assert resp.status == 401, await resp.text()
    assert db_rows(config, "SELECT COUNT(*) FROM sessions WHERE user_id = ?", (user_id,)) == [(0,)]
    assert (await api_login(client, "pacifico", "Nueva2026clave")).status == 200


async def test_a_sign_in_racing_a_deactivation_never_signs_in(client, config):
    admin_id = db_rows(config, "SELECT id FROM users WHERE username = 'admin'")[0][0]
    with _account_held(config, "pacifico") as (db, user_id):
        signing_in = asyncio.ensure_future(api_login(client, "pacifico"))
        await _until_the_sign_in_waits(config, signing_in)
        user_admin.set_enabled(db, user_id, False, admin_id, time.time())
    resp = await signing_in
    assert resp.status == 403, await resp.text()
    assert db_rows(config, "SELECT COUNT(*) FROM sessions WHERE user_id = ?", (user_id,)) == [(0,)]
