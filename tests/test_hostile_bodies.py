"""Request bodies, cookies and file names no browser sends: a clear 4xx, never a 500, nothing written."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from tests.helpdesk_support import ANDINA, new_serial, token_as
from tests.helpers import api_error, count, get_form, login

UNREADABLE_FORM = "No se pudo leer el formulario; envíelo de nuevo."

# Connection: close because aiohttp closes a connection whose body it could not read; the client must
# not try to reuse it for the next request.
CLOSE = {"Connection": "close"}


async def raw_request(client, request: bytes) -> tuple[int, bytes]:
    """Send bytes the client library refuses to send (non-UTF-8 header bytes); the status and the body."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(client, config, coding):
    users_before = count(config, "users")
    body = b'{"login": "andina", "password": "x"}'
    resp = await client.post(
        "/api/v1/registration",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": coding, **CLOSE},
    )
    assert resp.status == 400, await resp.text()
    assert (await api_error(resp))["code"] == "bad_request"
    # The same body really compressed is read as usual (an API client may compress what it sends).
    packed = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    resp = await client.post(
        "/api/v1/auth/login", data=packed, headers={"Content-Type": "application/json", "Content-Encoding": coding}
    )
    assert resp.status == 400 and (await api_error(resp))["code"] == "human_check_failed"
    assert count(config, "users") == users_before


async def test_a_gzip_bomb_is_refused_as_too_large(client):
    bomb = gzip.compress(b"{" + b" " * (40 * 1024 * 1024) + b"}", 1)
    resp = await client.post(
        "/api/v1/auth/login", data=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert resp.status == 413
    assert (await api_error(resp))["code"] == "too_large"


@pytest.mark.parametrize("coding", ["br", "zstd", "compress"])
async def test_a_content_encoding_the_server_does_not_decode_is_a_415_in_the_api_error_shape(client, coding):
    resp = await client.post(
        "/api/v1/auth/login",
        data=b"\x00\x01\x02",
        headers={"Content-Type": "application/json", "Content-Encoding": coding, **CLOSE},
    )
    assert resp.status == 415, await resp.text()
    assert (await api_error(resp))["code"] == "unsupported_encoding"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
async def test_a_compressed_form_post_is_refused_with_a_page_not_a_crash(client, config, coding):
    _page, hidden = await get_form(client, "/register")
    users_before = count(config, "users")
    resp = await client.post(
        "/register",
        data=b"not compressed at all",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Encoding": coding,
            "X-CSRF-Token": hidden["csrf_token"],
            **CLOSE,
        },
    )
    assert resp.status == 415
    assert resp.content_type == "text/html" and UNREADABLE_FORM in await resp.text()
    assert count(config, "users") == users_before


MALFORMED_MULTIPART = {
    "no-part-headers": b"--yy\r\nnonsense",
    "nul-in-part-header": b'--yy\r\nContent-Disposition: form-data; name="a\x00b"\r\n\r\nx\r\n--yy--\r\n',
    "control-in-part-header": (
        b'--yy\r\nContent-Disposition: form-data; name="a"\r\nX-Note: a\x01b\r\n\r\nx\r\n--yy--\r\n'
    ),
}


@pytest.mark.parametrize("body", MALFORMED_MULTIPART.values(), ids=MALFORMED_MULTIPART.keys())
@pytest.mark.parametrize("path", ["/login", "/register", "/password/forgot"])
async def test_malformed_multipart_on_the_public_forms_is_a_400_page(client, config, path, body):
    _page, hidden = await get_form(client, path)
    users_before = count(config, "users")
    resp = await client.post(
        path,
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=yy", "X-CSRF-Token": hidden["csrf_token"], **CLOSE},
    )
    assert resp.status == 400, await resp.text()
    assert UNREADABLE_FORM in await resp.text()
    assert count(config, "users") == users_before


@pytest.mark.parametrize("body", MALFORMED_MULTIPART.values(), ids=MALFORMED_MULTIPART.keys())
async def test_malformed_multipart_on_helpdesk_posts_is_a_400(client, config, body):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    await new_serial(client, admin, config, ANDINA)
    tickets_before = count(config, "service_tickets")
    headers = {"Content-Type": "multipart/form-data; boundary=yy", **CLOSE}
    resp = await client.post("/api/v1/helpdesk/tickets", data=body, headers={**andina, **headers})
    assert resp.status == 400 and (await api_error(resp))["code"] == "bad_request"
    await login(client, "andina", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, "/helpdesk/tickets/new")
    resp = await client.post(
        "/helpdesk/tickets/new", data=body, headers={**headers, "X-CSRF-Token": hidden["csrf_token"]}
    )
    assert resp.status == 400 and UNREADABLE_FORM in await resp.text()
    assert count(config, "service_tickets") == tickets_before


@pytest.mark.parametrize("path", ["/login", "/register", "/password/forgot"])
async def test_a_csrf_cookie_that_is_not_utf8_is_ignored_not_a_crash(client, path):
    status, body = await raw_request(
        client,
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: pg_csrf=".encode() + b"\xff\xfe\r\n\r\n",
    )
    assert status == 200
    assert b'name="csrf_token"' in body


async def test_an_upload_named_with_undecodable_bytes_is_refused_by_name_on_the_page(client, config):
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    await login(client, "andina", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, f"/helpdesk/tickets/new?policy_id={serial['policy_id']}")
    fields = {**hidden, "policy_id": str(serial["policy_id"]), "subject": "Falla", "description": "No imprime."}
    parts = [
        f'--yy\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        b'--yy\r\nContent-Disposition: form-data; name="attachments"; filename="..\xff.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhola\r\n--yy--\r\n"
    )
    before = count(config, "service_tickets")
    resp = await client.post(
        "/helpdesk/tickets/new", data=b"".join(parts), headers={"Content-Type": "multipart/form-data; boundary=yy"}
    )
    page = await resp.text()
    assert resp.status == 400, page
    assert "..\ufffd.txt" in page  # the name as the person can read it, in the refusal
    assert count(config, "service_tickets") == before
