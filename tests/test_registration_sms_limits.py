"""The limits that keep a 4-digit texted code from being guessed, and texts from being pumped.

Through the JSON API the customers' app uses, against the real app, a real SQLite file and the
stand-in SMS gateway: wrong codes are capped per phone and per company over 24 hours, whatever the
number of requests; client addresses are counted by their IPv6 /64; a request cancelled while its
text is on the way keeps nothing; and the last step does not hold the event loop while it hashes.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from server.accounts import registration
from server.accounts.registration import TooManyCodes
from server.db import connect
from server.migrations import MIGRATIONS, apply_migrations
from server.web import DB
from tests.helpers import api_error, db_rows
from tests.sms_gateway import (  # noqa: F401 (the fixtures)
    ANDINA,
    COMPANY_PHONE,
    NEW_ACCOUNT,
    OTHER_PHONE,
    gateway_fixture,
    request_code,
    sms_app_fixture,
    sms_client_fixture,
    sms_settings,
)
from tests.test_mixed_load import hash_seconds, longest_stall

TOO_MANY_MISSES = (
    "Se ingresaron demasiados códigos incorrectos para este teléfono o empresa hoy. Intente de nuevo mañana, "
    "o regístrese con un enlace enviado a su correo."
)


async def _complete(client, token: str, code: str, **changes: str):
    body = {"request_token": token, "code": code, **NEW_ACCOUNT, **changes}
    return await client.post("/api/v1/registration/complete", json=body)


def _requests_on_file(config) -> int:
    return db_rows(config, "SELECT COUNT(*) FROM one_time_tokens WHERE purpose = 'phone_registration'")[0][0]


async def test_ten_wrong_codes_a_day_close_the_phone_and_the_company_over_every_request(sms_client, gateway, config):
    client = sms_client
    tokens = []
    for _ in range(3):  # the phone's three codes of the hour, all asked for before any guess
        resp = await request_code(client)
        assert resp.status == 200, await resp.text()
        tokens.append((await resp.json())["request_token"])
    right = gateway.code_for(COMPANY_PHONE)  # the third request's
    sent = {text[-4:] for text in gateway.texts_to(COMPANY_PHONE)}
    wrong = next(f"{n:04d}" for n in range(10_000) if f"{n:04d}" not in sent)

    for token in tokens[:2]:
        for _ in range(5):
            assert (await api_error(await _complete(client, token, wrong)))["fields"]["code"]
    # The third request still has its five attempts, but the phone has had its ten for the day:
    # even the right code is refused now (else the guessing would go on with fresh requests).
    resp = await _complete(client, tokens[2], right)
    assert resp.status == 429
    error = await api_error(resp)
    assert (error["code"], error["message"]) == ("too_many_codes", TOO_MANY_MISSES)
    assert db_rows(config, "SELECT COUNT(*) FROM users WHERE username = 'jjefe'") == [(0,)]

    # Another phone for the same company is refused too, before any text is sent.
    resp = await request_code(client, OTHER_PHONE, lang="en")
    assert resp.status == 429
    error = await api_error(resp)
    assert error["code"] == "too_many_codes"
    assert error["message"].startswith("Too many wrong codes were entered for this phone or company today.")
    assert gateway.texts_to(OTHER_PHONE) == []


@pytest.mark.parametrize("sms_settings", [{"max_codes_per_address_per_hour": 2}])
async def test_ipv6_clients_are_counted_by_their_64_and_ipv4_ones_by_their_address(sms_client):
    db = sms_client.app[DB]
    phones = iter(f"+593 99 000 00{n:02d}" for n in range(20))

    async def ask(address: str) -> None:
        await db.write(
            registration.start_phone_registration,
            ANDINA,
            1,
            next(phones),
            time.time(),
            address=address,
            address_limit=2,
        )

    # A script taking a new address of its /64 for each request is still one client.
    await ask("2001:db8:5:6::1")
    await ask("2001:db8:5:6:ffff:1:2:3")
    with pytest.raises(TooManyCodes) as refused:
        await ask("2001:db8:5:6::abcd")
    assert refused.value.per == "address"
    # Another /64 is another line; IPv4 neighbours are other clients, and IPv4 over IPv6 is IPv4.
    for address in ("2001:db8:5:7::1", "192.0.2.1", "192.0.2.2", "::ffff:192.0.2.1"):
        await ask(address)
    with pytest.raises(TooManyCodes):
        await ask("192.0.2.1")


async def test_a_request_cancelled_while_its_text_is_sent_keeps_nothing(config, aiohttp_client, gateway, sms_app):
    # A server that cancels the handler of a client that hung up (as a shutdown cancels it too).
    client = await aiohttp_client(sms_app, server_kwargs={"handler_cancellation": True})
    gateway.answer(delay=3)
    with pytest.raises(asyncio.TimeoutError):
        await request_code(client, timeout=aiohttp.ClientTimeout(total=1))
    assert len(gateway.received) == 1  # the text was on its way when the client went
    deadline = time.monotonic() + 5
    while _requests_on_file(config) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _requests_on_file(config) == 0  # it would have used one of the phone's three codes an hour
    for _ in range(3):
        assert (await request_code(client)).status == 200


async def test_the_password_is_hashed_without_holding_up_other_requests(sms_client, gateway):
    client = sms_client
    one_hash = await hash_seconds()
    stalls = []
    # Two registrations (one per address on file); the shorter stall counts, so that a moment when
    # this busy machine did not run the test at all is not taken for a hash on the loop.
    for email_index, username in ((0, "jjefe"), (1, "jjefe2")):
        resp = await request_code(client, email_index=email_index)
        token = (await resp.json())["request_token"]
        code = gateway.code_for(COMPANY_PHONE)
        done = asyncio.ensure_future(_complete(client, token, code, username=username))
        stalls.append(await longest_stall(done))
        resp = await done
        assert resp.status == 201, await resp.text()
    stall = min(stalls)
    assert stall < one_hash / 2, f"the event loop stopped {stall * 1000:.0f} ms (one hash takes {one_hash * 1000:.0f})"


def test_requests_made_before_the_upgrade_keep_counting_by_their_digits(tmp_path, monkeypatch):
    db = connect(tmp_path / "old.db")
    with monkeypatch.context() as patch:  # the database as it was before migration 46
        patch.delitem(MIGRATIONS, 46)
        apply_migrations(db)
    db.execute(
        "INSERT INTO one_time_tokens (token_hash, purpose, company_id, phone, expires_at) "
        "VALUES ('h1', 'phone_registration', 1, '+59340000000', ?), ('h2', 'reset_password', 1, '', ?)",
        (time.time() + 900, time.time() + 900),
    )
    assert apply_migrations(db) == [46]
    rows = db.execute("SELECT token_hash, phone_digits FROM one_time_tokens ORDER BY token_hash").fetchall()
    assert [tuple(row) for row in rows] == [("h1", "59340000000"), ("h2", "")]
