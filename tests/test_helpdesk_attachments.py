"""Attachments: stored outside the web root under generated names, served only to who may see the
ticket as a download, and every abusive upload refused with a clear error and nothing kept."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from server.app import create_app
from server.demo import install_demo
from server.helpdesk.settings import HELPDESK_SETTINGS
from tests.helpdesk_support import ANDINA, new_serial, png_bytes, stored_files, ticket_body, token_as
from tests.helpers import api_error, db_rows, field_errors, get_form, login

LIMIT = 64 * 1024


@pytest.fixture
async def client(config, aiohttp_client):
    """The real app with a small attachment limit (so "too large" needs no megabytes)."""
    app = create_app(config)
    app[HELPDESK_SETTINGS] = replace(app[HELPDESK_SETTINGS], attachment_max_bytes=LIMIT)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def multipart(fields: dict, files: list[tuple[str, bytes, str]]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, str(value))
    for filename, data, content_type in files:
        form.add_field("attachments", data, filename=filename, content_type=content_type)
    return form


def counts(config) -> tuple[int, int, int]:
    return (
        db_rows(config, "SELECT COUNT(*) FROM service_tickets")[0][0],
        db_rows(config, "SELECT COUNT(*) FROM service_attachments")[0][0],
        len(stored_files(config)),
    )


async def test_attachments_are_stored_outside_the_web_root_and_served_as_downloads(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA)
    image = png_bytes()
    log = b"2026-01-01 ERROR no se pudo timbrar\n"
    resp = await client.post(
        "/api/v1/helpdesk/tickets",
        data=multipart(
            ticket_body(serial["policy_id"], "adjuntos@andina.example"),
            [("pantalla.png", image, "image/png"), ("error del sistema.log", log, "text/plain")],
        ),
        headers=andina,
    )
    assert resp.status == 201, await resp.text()
    ticket = await (await client.get(f"/api/v1/helpdesk/tickets/{(await resp.json())['id']}", headers=andina)).json()
    files = {f["name"]: f for f in ticket["attachments"]}
    assert set(files) == {"pantalla.png", "error del sistema.log"}

    on_disk = stored_files(config)
    assert len(on_disk) == 2
    static = Path(__file__).resolve().parent.parent / "server" / "static"
    for path in on_disk:
        assert static not in path.parents
        assert len(path.name) == 32 and path.name.isalnum()  # a generated name, nothing of the user's
    stored = db_rows(config, "SELECT stored_name, sha256 FROM service_attachments ORDER BY id")
    assert {name for name, _ in stored} == {p.name for p in on_disk}
    assert stored[0][1] == hashlib.sha256(image).hexdigest()

    resp = await client.get(files["pantalla.png"]["url"], headers=andina)
    assert resp.status == 200 and await resp.read() == image
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="pantalla.png"')
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    resp = await client.get(files["error del sistema.log"]["url"], headers=andina)
    assert "filename*=UTF-8''error%20del%20sistema.log" in resp.headers["Content-Disposition"]

    # Helpdesk staff may download it; another company may not, by page or API.
    mesa = await token_as(client, "mesa")
    assert (await client.get(files["pantalla.png"]["url"], headers=mesa)).status == 200
    pacifico = await token_as(client, "pacifico")
    assert (await client.get(files["pantalla.png"]["url"], headers=pacifico)).status == 404
    await login(client, "pacifico", language="en")
    assert (await client.get(f"/helpdesk/attachments/{files['pantalla.png']['id']}")).status == 404
    client.session.cookie_jar.clear()
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    resp = await client.get(f"/helpdesk/attachments/{files['pantalla.png']['id']}")
    assert resp.status == 200 and resp.headers["Content-Disposition"].startswith("attachment")


ABUSE = [
    ("too_large", "grande.png", png_bytes() + b"\0" * LIMIT, "is larger than 64 KB"),
    ("wrong_type", "programa.exe", b"MZ\x90\x00binary", "not accepted (programa.exe)"),
    ("html_as_text", "pagina.html", b"<script>alert(1)</script>", "not accepted (pagina.html)"),
    ("not_really_png", "foto.png", b"<html>not an image</html>", "is not really a .png file"),
    ("executable_as_log", "error.log", b"MZ\x90\x00\x03\x00binary", "is not really a .log file"),
    ("dot_dot_slash", "../../etc/passwd.txt", b"root:x:0:0\n", "is not allowed"),
    ("dot_dot_backslash", "..\\..\\boot.txt", b"hola\n", "is not allowed"),
    ("empty", "vacio.txt", b"", "is empty"),
]


@pytest.mark.parametrize(("case", "filename", "data", "message"), ABUSE, ids=[a[0] for a in ABUSE])
async def test_abusive_uploads_are_refused_and_nothing_is_stored(client, config, case, filename, data, message):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA)
    before = counts(config)
    fields = ticket_body(serial["policy_id"], f"{case}@andina.example")
    # A good file next to the bad one must not be kept either.
    files = [("ok.png", png_bytes(), "image/png"), (filename, data, "application/octet-stream")]
    resp = await client.post("/api/v1/helpdesk/tickets", data=multipart(fields, files), headers=andina)
    assert resp.status == 400
    error = await api_error(resp)
    assert message in error["fields"]["attachments"]
    assert counts(config) == before

    # The same through the portal page: the error is shown at the attachments field.
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, f"/helpdesk/tickets/new?policy_id={serial['policy_id']}")
    resp = await client.post("/helpdesk/tickets/new", data=multipart({**fields, **hidden}, files))
    assert resp.status == 400
    errors = field_errors(await resp.text())
    assert set(errors) == {"attachments"} and message in errors["attachments"]
    assert counts(config) == before


async def test_a_refused_ticket_leaves_no_orphan_file(client, config):
    """The files pass every check but the ticket is refused (serial limit): nothing stays on disk."""
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA, max_open_tickets=0)
    before = counts(config)
    resp = await client.post(
        "/api/v1/helpdesk/tickets",
        data=multipart(ticket_body(serial["policy_id"], "x@andina.example"), [("a.png", png_bytes(), "image/png")]),
        headers=andina,
    )
    assert (await api_error(resp))["code"] == "serial_ticket_limit"
    assert counts(config) == before


async def test_reply_attachments_in_the_thread_and_too_many_files(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    mesa = await token_as(client, "mesa")
    serial = await new_serial(client, admin, config, ANDINA)
    ticket = await (
        await client.post(
            "/api/v1/helpdesk/tickets", json=ticket_body(serial["policy_id"], "r@andina.example"), headers=andina
        )
    ).json()
    url = f"/api/v1/helpdesk/tickets/{ticket['id']}/replies"
    resp = await client.post(
        url, data=multipart({"body": "Va el log"}, [("a.csv", b"a,b\n1,2\n", "text/csv")]), headers=mesa
    )
    assert resp.status == 201
    reply = (await resp.json())["replies"][0]
    assert reply["author_role"] == "agent" and [f["name"] for f in reply["attachments"]] == ["a.csv"]
    assert (await client.get(reply["attachments"][0]["url"], headers=andina)).status == 200
    limit = client.app[HELPDESK_SETTINGS].attachment_max_files
    many = [(f"f{n}.txt", b"hola\n", "text/plain") for n in range(limit + 1)]
    before = counts(config)
    resp = await client.post(url, data=multipart({"body": "muchos"}, many), headers=andina)
    assert resp.status == 400 and f"At most {limit} files" in (await api_error(resp))["fields"]["attachments"]
    assert counts(config) == before
