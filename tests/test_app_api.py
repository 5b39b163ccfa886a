"""Everything the customers' app does in seed 001 (sections 11–16), called as the app calls the JSON API.

A customer's bearer token, real HTTP on loopback, real SQLite, real SMTP; attachments are real
image files as a phone's camera (JPEG) or gallery (PNG) gives them, sent as multipart.
"""

from __future__ import annotations

import csv
import io
import re

from tests.app_support import camera_jpeg
from tests.helpdesk_support import png_bytes, ticket_body, token_as
from tests.helpers import api_error, api_human, api_login, bearer
from tests.test_helpdesk_attachments import multipart


async def _json(resp, status: int = 200):
    assert resp.status == status, await resp.text()
    return await resp.json()


# --- 12. Inicio de sesión: RFC or e-mail, and the main screen's menu -----------------------------


async def test_login_by_rfc_or_email_and_the_main_screen_knows_who_may_manage_users(client):
    # By e-mail: one profile, in use at once.
    pedro = await _json(await api_login(client, "pedro@pacifico.example"))
    me = await _json(await client.get("/api/v1/me", headers=bearer(pedro["token"])))
    assert me["profile"]["role"] == "customer" and me["profile"]["company_name"].startswith("Importadora")

    # By the company's RFC: two of Pacífico's accounts share this password, so the app shows them
    # masked and the user picks theirs.
    choice = await _json(await api_login(client, "1790012345001"))
    assert len(choice["accounts"]) == 2 and all("*" in a["masked"] for a in choice["accounts"])
    chosen = await client.post(
        "/api/v1/auth/login/choose", json={"choice_token": choice["choice_token"], "login": "pedro@pacifico.example"}
    )
    assert (await _json(chosen))["profiles"][0]["company_name"].startswith("Importadora")

    # Carla holds two profiles at Andina; "Mis usuarios" is on her menu only as its administrator.
    carla = await token_as(client, "andina", "customer_admin")
    me = await _json(await client.get("/api/v1/me", headers=carla))
    assert me["profile"]["role"] == "customer_admin"
    assert (await client.get("/api/v1/company/users", headers=carla)).status == 200
    plain = await token_as(client, "pacifico")
    assert (await client.get("/api/v1/company/users", headers=plain)).status == 403


async def test_forgot_password_mails_a_link_whatever_the_address(client, smtp):
    for email in ("pedro@pacifico.example", "nadie@nowhere.example"):
        resp = await client.post("/api/v1/password/forgot", json={"email": email, **(await api_human(client))})
        body = await _json(resp, 202)
        assert "enlace" in body["message"]
    assert "/password/reset?token=" in smtp.wait_for("pedro@pacifico.example").get_content()


# --- Mi cuenta ---------------------------------------------------------------------------------


async def test_my_account_reads_and_changes_the_phone_and_language(client):
    headers = await token_as(client, "pacifico")
    account = (await _json(await client.get("/api/v1/account", headers=headers)))["account"]
    assert account["username"] == "pacifico" and account["email"] == "pedro@pacifico.example"
    changed = {"full_name": account["full_name"], "email": account["email"], "phone": "+593991234000", "language": "en"}
    saved = await _json(await client.put("/api/v1/account", json=changed, headers=headers))
    assert saved["account"]["phone"] == "+593991234000" and saved["account"]["language"] == "en"


# --- 13. Mis Tickets: support and service tickets with photos, search, follow-up, rating ---------


async def _policy_for_new_ticket(client, headers, search: str) -> dict:
    """The app's "Generar Ticket" list: current policies, searched by text; the user taps one."""
    page = await _json(await client.get("/api/v1/policies", params={"current": "1", "q": search}, headers=headers))
    assert page["policies"], page
    return page["policies"][0]


async def test_a_support_ticket_with_a_camera_photo_then_reply_with_a_gallery_image_and_rate(client, config):
    andina = await token_as(client, "andina", "customer")
    policy = await _policy_for_new_ticket(client, andina, "Mobile")
    assert policy["system"] == "Portgate Mobile" and policy["days_left"] > 0
    areas = (await _json(await client.get("/api/v1/helpdesk/areas", headers=andina)))["areas"]
    assert "technical_support" in [a["code"] for a in areas]

    photo = camera_jpeg()
    body = ticket_body(policy["id"], "soporte-app@andina.example", subject="La tablet no sincroniza")
    resp = await client.post(
        "/api/v1/helpdesk/tickets",
        data=multipart(body, [("IMG_20260112_101500.jpg", photo, "image/jpeg")]),
        headers=andina,
    )
    ticket = await _json(resp, 201)
    assert re.fullmatch(r"S_\d+_\d{14}", ticket["number"]) and ticket["status"] == "open"

    # Mis Tickets: it is listed, and found by its number or a word of its subject.
    for query in (ticket["number"], "sincroniza"):
        found = await _json(await client.get("/api/v1/helpdesk/tickets", params={"q": query}, headers=andina))
        assert [t["id"] for t in found["tickets"]] == [ticket["id"]]

    # Seguimiento: the thread carries the photo, byte for byte.
    detail = await _json(await client.get(f"/api/v1/helpdesk/tickets/{ticket['id']}", headers=andina))
    [attached] = detail["attachments"]
    assert attached["name"] == "IMG_20260112_101500.jpg" and attached["content_type"] == "image/jpeg"
    download = await client.get(attached["url"], headers=andina)
    assert download.status == 200 and await download.read() == photo

    # Responder ticket, with an image from the gallery.
    reply = multipart({"body": "Adjunto otra captura."}, [("Screenshot_2026.png", png_bytes(8, 8), "image/png")])
    thread = await _json(
        await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/replies", data=reply, headers=andina), 201
    )
    assert thread["replies"][-1]["body"] == "Adjunto otra captura."
    assert thread["replies"][-1]["attachments"][0]["name"] == "Screenshot_2026.png"

    # A closed ticket can be rated (Calificar Ticket); an open one cannot.
    early = await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/rating", json={"rating": 5}, headers=andina)
    assert early.status == 409
    agent = await token_as(client, "mesa")
    await _json(await client.post(f"/api/v1/helpdesk/tickets/{ticket['id']}/close", headers=agent))
    rated = await client.post(
        f"/api/v1/helpdesk/tickets/{ticket['id']}/rating", json={"rating": 5, "comment": "Rápido"}, headers=andina
    )
    assert rated.status in (200, 201), await rated.text()
    detail = await _json(await client.get(f"/api/v1/helpdesk/tickets/{ticket['id']}", headers=andina))
    assert detail["status"] == "closed" and detail["rating"] == 5 and detail["rating_comment"] == "Rápido"


async def test_a_service_ticket_goes_to_customer_service_and_the_list_filters_by_area(client):
    andina = await token_as(client, "andina", "customer")
    policy = await _policy_for_new_ticket(client, andina, "Portal")
    body = ticket_body(policy["id"], "compras@andina.example", area="customer_service", subject="Factura de renovación")
    ticket = await _json(await client.post("/api/v1/helpdesk/tickets", json=body, headers=andina), 201)
    assert ticket["area_label"]

    service = await _json(
        await client.get("/api/v1/helpdesk/tickets", params={"area": "customer_service"}, headers=andina)
    )
    assert ticket["id"] in [t["id"] for t in service["tickets"]]
    assert {t["area"] for t in service["tickets"]} == {"customer_service"}

    # A second open ticket for the same system and e-mail is refused, naming the open one.
    again = await client.post("/api/v1/helpdesk/tickets", json=body, headers=andina)
    assert again.status == 409
    assert (await again.json())["existing_ticket"]["id"] == ticket["id"]


# --- 15. Mis Licencias y Equipos registrados ------------------------------------------------------


async def test_licences_filter_by_system_search_machines_detail_inactive_and_csv(client):
    andina = await token_as(client, "andina", "customer")
    systems = await _json(await client.get("/api/v1/licences/systems", headers=andina))
    assert systems["systems"] == ["Portgate Mobile", "Portgate Portal"]  # Andina's own, for the filter

    portal = await _json(await client.get("/api/v1/licences", params={"system": "Portgate Portal"}, headers=andina))
    assert {s["system"] for s in portal["serials"]} == {"Portgate Portal"} and len(portal["serials"]) == 2
    found = await _json(await client.get("/api/v1/licences", params={"q": "8092589D"}, headers=andina))
    [serial] = found["serials"]
    assert serial["machines"] == {"total": 3, "active": 2, "available": 1, "registered": 3}

    detail = await _json(await client.get(f"/api/v1/licences/{serial['id']}", headers=andina))
    assert detail["serial"] == "8092589D-737B-4742-BCD3-265E11BD29B9" and detail["days_left"] > 0
    active = await _json(
        await client.get(f"/api/v1/licences/{serial['id']}/machines", params={"status": "active"}, headers=andina)
    )
    assert sorted(m["name"] for m in active["machines"]) == ["ANDINA-CONTAB-01", "ANDINA-GERENCIA"]
    inactive = await _json(
        await client.get(f"/api/v1/licences/{serial['id']}/machines", params={"status": "inactive"}, headers=andina)
    )
    assert [m["name"] for m in inactive["machines"]] == ["ANDINA-OLD"]
    machine = active["machines"][0]
    seen = await _json(await client.get(f"/api/v1/licences/{serial['id']}/machines/{machine['id']}", headers=andina))
    assert seen["fingerprint"] == machine["fingerprint"]

    export = await client.get(f"/api/v1/licences/{serial['id']}/machines/export", headers=andina)
    assert export.status == 200 and "csv" in export.headers["Content-Type"]
    rows = list(csv.reader(io.StringIO((await export.read()).decode("utf-8-sig"))))
    assert {"ANDINA-CONTAB-01", "ANDINA-GERENCIA", "ANDINA-OLD"} <= {cell for row in rows for cell in row}

    # Another company's serial is not there for Andina.
    pacifico = await token_as(client, "pacifico")
    theirs = (await _json(await client.get("/api/v1/licences", headers=pacifico)))["serials"][0]
    assert (await client.get(f"/api/v1/licences/{theirs['id']}", headers=andina)).status == 404
    assert (await _json(await client.get("/api/v1/licences/systems", headers=pacifico)))["systems"] == [
        "Portgate Portal"
    ]


# --- 16. Mis Pólizas ------------------------------------------------------------------------------


async def test_policies_filter_by_system_search_and_detail(client):
    andina = await token_as(client, "andina", "customer")
    mobile = await _json(await client.get("/api/v1/policies", params={"system": "Portgate Mobile"}, headers=andina))
    [policy] = mobile["policies"]
    assert policy["serial"] == "4DF7800E-320A-47D6-9032-2ABE643B8E99"
    searched = await _json(await client.get("/api/v1/policies", params={"q": "4DF7800E"}, headers=andina))
    assert [p["id"] for p in searched["policies"]] == [policy["id"]]
    detail = await _json(await client.get(f"/api/v1/policies/{policy['id']}", headers=andina))
    assert {"number", "system", "description", "registered_on", "valid_until", "serial"} <= set(detail)
    assert detail["description"] == "Portgate Mobile Licencia Anual"


# --- Mis usuarios (a customer administrator) ------------------------------------------------------


async def test_mis_usuarios_adds_changes_and_removes_a_company_user(client, smtp):
    carla = await token_as(client, "andina", "customer_admin")
    email = "diego@andina.example"
    new = {
        "full_name": "Diego Bodega",
        "username": "dbodega",
        "email": email,
        "email_confirm": email,
        "roles": ["customer"],
    }
    added = await _json(await client.post("/api/v1/company/users", json=new, headers=carla), 201)
    assert added["roles"] == ["customer"]
    assert smtp.wait_for("diego@andina.example")
    listed = (await _json(await client.get("/api/v1/company/users", headers=carla)))["users"]
    assert "dbodega" in [u["username"] for u in listed]

    promoted = await client.put(
        f"/api/v1/company/users/{added['id']}/profiles", json={"roles": ["customer", "customer_admin"]}, headers=carla
    )
    assert sorted((await _json(promoted))["roles"]) == ["customer", "customer_admin"]
    removed = await _json(await client.delete(f"/api/v1/company/users/{added['id']}", headers=carla))
    assert removed == {"removed": added["id"]}

    # A plain customer of the company is refused, in the app's language.
    andina_user = await token_as(client, "andina", "customer")
    refused = await client.get("/api/v1/company/users", headers=andina_user)
    assert refused.status == 403 and (await api_error(refused))["code"]


# --- the OpenAPI document covers every call above ---------------------------------------------------


APP_CALLS = [
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/password/forgot"),
    ("post", "/api/v1/registration/lookup"),
    ("post", "/api/v1/registration/phone"),
    ("post", "/api/v1/registration/complete"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/account"),
    ("put", "/api/v1/account"),
    ("get", "/api/v1/helpdesk/areas"),
    ("get", "/api/v1/helpdesk/tickets"),
    ("post", "/api/v1/helpdesk/tickets"),
    ("get", "/api/v1/helpdesk/tickets/{ticket_id}"),
    ("post", "/api/v1/helpdesk/tickets/{ticket_id}/replies"),
    ("post", "/api/v1/helpdesk/tickets/{ticket_id}/rating"),
    ("get", "/api/v1/helpdesk/attachments/{attachment_id}"),
    ("get", "/api/v1/licences/systems"),
    ("get", "/api/v1/licences"),
    ("get", "/api/v1/licences/{serial_id}"),
    ("get", "/api/v1/licences/{serial_id}/machines"),
    ("get", "/api/v1/licences/{serial_id}/machines/{machine_id}"),
    ("get", "/api/v1/licences/{serial_id}/machines/export"),
    ("get", "/api/v1/policies"),
    ("get", "/api/v1/policies/{policy_id}"),
    ("get", "/api/v1/company/users"),
    ("post", "/api/v1/company/users"),
    ("put", "/api/v1/company/users/{user_id}/profiles"),
    ("delete", "/api/v1/company/users/{user_id}"),
]


async def test_the_openapi_document_covers_every_call_the_app_makes(client):
    spec = await _json(await client.get("/api/v1/openapi.json"))
    missing = [(method, path) for method, path in APP_CALLS if method not in spec["paths"].get(path, {})]
    assert missing == []
    # The photo uploads are documented as multipart with files under "attachments".
    create = spec["paths"]["/api/v1/helpdesk/tickets"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in create
