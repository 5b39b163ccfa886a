"""The JSON API ``/api/v1`` for accounts, through real HTTP on loopback, real SQLite and real SMTP.

What a mobile app or a third-party client notices: status codes, stable error codes, messages in
the chosen language, tokens that work or stop working.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
from pathlib import Path

import pytest

from server import openapi
from server.accounts import docs as accounts_docs
from tests.helpers import api_error, api_human, api_login, api_token, bearer, count, db_rows

REGISTRATION = {
    "full_name": "Lucía Torres",
    "username": "ltorres",
    "email": "lucia@andina.example",
    "email_confirm": "lucia@andina.example",
    "tax_id": "0991234567001",
    "phone": "+593 99 123 4567",
    "password": "Puerto2026seguro",
    "password_confirm": "Puerto2026seguro",
}
ANDINA = "0991234567001"


# --- login ------------------------------------------------------------------------------------


async def test_login_with_human_check_gives_a_bearer_token_and_the_profiles(client):
    challenge = await (await client.get("/api/v1/human-check")).json()
    assert challenge["kind"] == "builtin" and re.fullmatch(r"\d \+ \d", challenge["question"])

    resp = await api_login(client, "agente")
    assert resp.status == 200
    body = await resp.json()
    assert body["expires_in"] == 12 * 3600
    companies = sorted(p["company_name"] for p in body["profiles"])
    assert companies == ["Exportadora Andina S.A.", "Importadora del Pacífico Cía. Ltda."]
    assert {p["role_label"] for p in body["profiles"]} == {"Cliente"}

    me = await (await client.get("/api/v1/me", headers=bearer(body["token"]))).json()
    assert me["username"] == "agente" and me["full_name"] == "Marta Multi"
    assert me["profile"] is None  # two profiles: the user chooses

    listed = await (await client.get("/api/v1/profiles", headers=bearer(body["token"]))).json()
    assert [p["id"] for p in listed["profiles"]] == [p["id"] for p in body["profiles"]]


async def test_login_by_email_with_a_single_profile_acts_as_it_at_once(client):
    token = await api_token(client, "pedro@pacifico.example")
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["profile"]["role"] == "customer"
    assert me["profile"]["company_name"] == "Importadora del Pacífico Cía. Ltda."


async def test_wrong_password_and_failed_human_check_are_told_apart(client):
    wrong = await api_login(client, "andina", "not-the-password-1")
    assert wrong.status == 401
    error = await api_error(wrong)
    assert error["code"] == "wrong_credentials" and error["message"] == "Usuario o contraseña incorrectos."

    human = await api_human(client)
    robot = await client.post(
        "/api/v1/auth/login",
        json={
            "login": "andina",
            "password": "demo2026pass",
            **human,
            "human_answer": str(int(human["human_answer"]) + 1),
        },
    )
    assert robot.status == 400
    error = await api_error(robot)
    assert error["code"] == "human_check_failed"
    assert error["message"] == "Confirme que no es un robot: la verificación no fue superada."

    # A wrong answer used its challenge up; a solved challenge works once only.
    human = await api_human(client)
    first = await client.post("/api/v1/auth/login", json={"login": "andina", "password": "wrong-pass-1", **human})
    assert first.status == 401
    again = await client.post("/api/v1/auth/login", json={"login": "andina", "password": "demo2026pass", **human})
    assert (await api_error(again))["code"] == "human_check_failed"


@pytest.mark.parametrize(
    "human",
    [
        {},
        {"human_token": "².abc.def", "human_answer": "3"},
        {"human_token": "9999999999.abc.é", "human_answer": "3"},
        {"human_token": "9999999999.\ud800.abc", "human_answer": "3"},
        {"human_token": "x" * 5000, "human_answer": "1" * 5000},
        {"human_token": 123, "human_answer": ["1"]},
    ],
    ids=["missing", "superscript", "non-ascii", "surrogate", "huge", "wrong-types"],
)
async def test_garbage_human_check_is_a_failed_check_not_a_crash(client, human):
    resp = await client.post("/api/v1/auth/login", json={"login": "andina", "password": "demo2026pass", **human})
    assert resp.status == 400
    error = await api_error(resp)
    if "\ud800" in str(human.get("human_token")):  # text no database can store: refused where input enters
        assert error["code"] == "invalid" and "human_token" in error["fields"]
    else:
        assert error["code"] == "human_check_failed"


async def test_superscript_answer_to_a_real_challenge_is_refused(client):
    human = await api_human(client)
    resp = await client.post(
        "/api/v1/auth/login", json={"login": "andina", "password": "demo2026pass", **human, "human_answer": "²"}
    )
    assert resp.status == 400 and (await api_error(resp))["code"] == "human_check_failed"


async def test_missing_login_fields_are_named(client):
    resp = await client.post("/api/v1/auth/login", json={**(await api_human(client))})
    assert resp.status == 400
    error = await api_error(resp)
    assert error["code"] == "invalid"
    assert error["fields"] == {"login": "Este campo es obligatorio.", "password": "Este campo es obligatorio."}


async def test_account_locks_after_repeated_failures(client, config):
    for _ in range(config.security.login_max_failures_per_account - 1):
        assert (await api_login(client, "pacifico", "wrong-password-1")).status == 401
    locked = await api_login(client, "pacifico", "wrong-password-1")
    assert locked.status == 429
    error = await api_error(locked)
    assert error["code"] == "locked" and "bloqueada" in error["message"]
    # Even the right password waits for the lock to end.
    assert (await api_error(await api_login(client, "pacifico")))["code"] == "locked"


# --- profiles, me, logout ----------------------------------------------------------------------


async def test_select_profile_shows_its_company_and_refuses_someone_elses(client, config):
    token = await api_token(client, "agente")
    profiles = (await (await client.get("/api/v1/profiles", headers=bearer(token))).json())["profiles"]
    pacifico = next(p for p in profiles if p["company_name"].startswith("Importadora"))

    resp = await client.post("/api/v1/profiles/select", json={"profile_id": pacifico["id"]}, headers=bearer(token))
    assert resp.status == 200
    assert (await resp.json())["profile"]["company_name"] == "Importadora del Pacífico Cía. Ltda."
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["profile"]["id"] == pacifico["id"] and me["profile"]["role"] == "customer"

    admins_profile = db_rows(config, "SELECT id FROM profiles WHERE role = 'admin'")[0][0]
    other = await client.post("/api/v1/profiles/select", json={"profile_id": admins_profile}, headers=bearer(token))
    assert other.status == 404
    assert (await api_error(other))["code"] == "not_found"
    # The refused choice changed nothing.
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["profile"]["id"] == pacifico["id"]

    for bad in ("one", None, True, 1.5, [1], {"id": 1}, 2**80, -3, "x" * 10_000):
        resp = await client.post("/api/v1/profiles/select", json={"profile_id": bad}, headers=bearer(token))
        assert resp.status == 400, bad
        assert "profile_id" in (await api_error(resp))["fields"]


async def test_without_a_valid_token_every_private_route_answers_401_json(client):
    for method, path in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/profiles"),
        ("POST", "/api/v1/profiles/select"),
        ("POST", "/api/v1/password"),
        ("POST", "/api/v1/auth/logout"),
    ]:
        for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic YWRtaW46YWRtaW4="}, bearer("é" * 300)):
            resp = await client.request(method, path, json={}, headers=headers)
            assert resp.status == 401, (method, path, headers)
            error = await api_error(resp)
            assert error["code"] == "unauthorized" and error["message"] == "Inicie sesión primero."


async def test_token_with_raw_non_utf8_bytes_is_refused_cleanly(client):
    """A broken client may send any bytes in a header; the answer is still a 401, not a crash."""
    request = b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_logout_revokes_the_token(client):
    token = await api_token(client, "pacifico")
    resp = await client.post("/api/v1/auth/logout", headers=bearer(token))
    assert resp.status == 200 and (await resp.json()) == {"ok": True}
    resp = await client.get("/api/v1/me", headers=bearer(token))
    assert resp.status == 401 and (await api_error(resp))["code"] == "unauthorized"


# --- change password ---------------------------------------------------------------------------


async def test_change_password_checks_the_current_one_and_ends_other_sessions(client, config):
    token = await api_token(client, "pacifico")
    other_device = await api_token(client, "pacifico")

    bad = await client.post(
        "/api/v1/password",
        json={
            "current_password": "wrong-1234567",
            "new_password": "Nueva2026clave",
            "new_password_confirm": "Nueva2026clave",
        },
        headers=bearer(token),
    )
    assert bad.status == 400
    assert (await api_error(bad))["fields"] == {"current_password": "La contraseña actual no es correcta."}

    weak = await client.post(
        "/api/v1/password",
        json={"current_password": "demo2026pass", "new_password": "short", "new_password_confirm": "other"},
        headers=bearer(token),
    )
    assert (await api_error(weak))["fields"] == {
        "new_password": "La contraseña debe tener al menos 10 caracteres.",
        "new_password_confirm": "Las contraseñas no coinciden.",
    }
    odd = await client.post(
        "/api/v1/password",
        json={"current_password": "demo2026pass", "new_password": "Nueva2026\ud800", "new_password_confirm": "x"},
        headers=bearer(token),
    )
    assert odd.status == 400 and "new_password" in (await api_error(odd))["fields"]

    ok = await client.post(
        "/api/v1/password",
        json={
            "current_password": "demo2026pass",
            "new_password": "Nueva2026clave",
            "new_password_confirm": "Nueva2026clave",
        },
        headers=bearer(token),
    )
    assert ok.status == 200 and (await ok.json()) == {"ok": True}

    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    assert (await client.get("/api/v1/me", headers=bearer(other_device))).status == 401
    assert (await api_error(await api_login(client, "pacifico")))["code"] == "wrong_credentials"
    assert (await api_login(client, "pacifico", "Nueva2026clave")).status == 200
    assert db_rows(config, "SELECT COUNT(*) FROM audit_log WHERE event = 'password.changed'")[0][0] == 1


# --- bad input: always a 4xx JSON error, never a 500 ----------------------------------------------


def _documented_posts() -> list[tuple[str, list[str]]]:
    """Every documented POST of the accounts API with the names of its body fields."""
    posts = []
    docs = openapi.ApiDocs()
    accounts_docs.document_routes(docs)
    for path, ops in docs.spec()["paths"].items():
        op = ops.get("post")
        # Logout takes no body and would end the token the other requests use.
        if op and op.get("tags") == ["accounts"] and path != "/api/v1/auth/logout":
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            posts.append((path, sorted(schema.get("properties", {}))))
    return posts


ACCOUNT_POSTS = _documented_posts()
RAW_BODIES = {
    "not-json": b"{login: andina",
    "empty": b"",
    "list": b"[1, 2]",
    "string": b'"login"',
    "number": b"42",
    "null": b"null",
    "not-utf8": b'{"login": "\xff\xfe"}',
    "deeply-nested": b"[" * 100_000,
    "deeply-nested-field": b'{"login": ' + b"[" * 100_000,
}


async def test_a_body_that_is_not_a_json_object_is_a_400(client):
    token = await api_token(client, "pacifico")
    for (path, _fields), (kind, raw) in itertools.product(ACCOUNT_POSTS, RAW_BODIES.items()):
        resp = await client.post(path, data=raw, headers={**bearer(token), "Content-Type": "application/json"})
        assert resp.status == 400, (path, kind, await resp.text())
        error = await api_error(resp)
        assert error["code"] == "invalid_json", (path, kind, error)
        assert error["message"] in (
            "El cuerpo de la solicitud no es JSON válido.",
            "El cuerpo de la solicitud debe ser un objeto JSON.",
        )


WRONG_VALUES = {
    "number": 12345,
    "float": 1e308,
    "bool": True,
    "list": ["a", "b"],
    "object": {"a": 1},
    "null": None,
    "oversized": "x" * 100_000,
    "surrogate": "\ud800\udfff\ud800",
    "control": "a\x00b\x1bc",
}


async def test_fields_of_the_wrong_type_or_size_get_a_clear_400(client, config):
    token = await api_token(client, "andina")
    users_before = count(config, "users")
    for (path, fields), (kind, value) in itertools.product(ACCOUNT_POSTS, WRONG_VALUES.items()):
        resp = await client.post(path, json=dict.fromkeys(fields, value), headers=bearer(token))
        assert 400 <= resp.status < 500, (path, kind, resp.status, await resp.text())
        error = await api_error(resp)
        expected_codes = ("invalid", "human_check_failed", "not_found", "unknown_tax_id")
        assert error["code"] in expected_codes, (path, kind, error)
        if error["code"] == "invalid":
            assert set(error["fields"]) <= set(fields), (path, kind, error)
    assert count(config, "users") == users_before
    # The token still works: bad input changed nothing.
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200


async def test_oversized_fields_are_named_with_their_limit(client):
    resp = await client.post(
        "/api/v1/registration", json={**REGISTRATION, "full_name": "x" * 100_000, "username": "y" * 1000}
    )
    assert resp.status == 400
    fields = (await api_error(resp))["fields"]
    assert fields["full_name"] == "Como máximo 120 caracteres."
    assert fields["username"] == "Como máximo 40 caracteres."


async def test_a_body_over_the_size_limit_is_refused_with_json(client):
    resp = await client.post(
        "/api/v1/registration", data=io.BytesIO(b"x" * (31 * 1024 * 1024)), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    error = await api_error(resp)
    assert error["code"] == "too_large" and error["message"] == "La solicitud es demasiado grande."


async def test_unknown_api_path_and_wrong_method_answer_json_in_the_readers_language(client):
    resp = await client.get("/api/v1/no-such-thing")
    assert resp.status == 404
    assert await api_error(resp) == {"code": "not_found", "message": "No encontrado.", "fields": {}}
    resp = await client.get("/api/v1/auth/login", headers={"Accept-Language": "en"})
    assert resp.status == 405
    error = await api_error(resp)
    assert error["code"] == "method_not_allowed" and error["message"] == "This method is not allowed on this address."


# --- registration -------------------------------------------------------------------------------


async def test_registration_names_every_missing_field(client, config):
    users_before = count(config, "users")
    resp = await client.post("/api/v1/registration", json={})
    assert resp.status == 400
    error = await api_error(resp)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == set(REGISTRATION)
    assert set(error["fields"].values()) == {"Este campo es obligatorio."}
    assert count(config, "users") == users_before


async def test_registration_with_unknown_tax_id_gives_the_contact_address(client, config):
    body = {**REGISTRATION, "tax_id": "0999999999001", **(await api_human(client))}
    resp = await client.post("/api/v1/registration", json=body)
    assert resp.status == 400
    error = await api_error(resp)
    assert error["code"] == "unknown_tax_id"
    assert "soporte@terminal.example" in error["message"]
    assert error["fields"]["tax_id"] == error["message"]
    assert not db_rows(config, "SELECT 1 FROM users WHERE username = 'ltorres'")


async def test_registration_needs_the_human_check(client, config):
    resp = await client.post("/api/v1/registration", json=REGISTRATION)
    assert resp.status == 400 and (await api_error(resp))["code"] == "human_check_failed"
    assert not db_rows(config, "SELECT 1 FROM users WHERE username = 'ltorres'")


async def test_registration_creates_a_pending_account_and_mails_it(client, smtp):
    resp = await client.post("/api/v1/registration", json={**REGISTRATION, **(await api_human(client))})
    assert resp.status == 201
    assert (await resp.json())["status"] == "pending"
    mail = smtp.wait_for("lucia@andina.example", "registro recibido")
    assert "24 horas" in mail.get_content()

    pending = await api_login(client, "ltorres", "Puerto2026seguro")
    assert pending.status == 403
    error = await api_error(pending)
    assert error["code"] == "pending" and "espera de aprobación" in error["message"]

    again = await client.post("/api/v1/registration", json={**REGISTRATION, **(await api_human(client))})
    assert again.status == 400
    assert set((await api_error(again))["fields"]) == {"username", "email"}


async def test_registration_in_english_mails_in_english(client, smtp):
    resp = await client.post(
        "/api/v1/registration?lang=en",
        json={**REGISTRATION, **(await api_human(client))},
    )
    assert resp.status == 201
    mail = smtp.wait_for("lucia@andina.example", "registration received")
    assert "24 hours" in mail.get_content()


# --- existing customer, mobile flow with a 4-digit SMS code -----------------------------------------


def _sms_codes(config, phone: str) -> list[str]:
    """The codes texted to ``phone`` so far, read from the file the default SMS sender writes."""
    path = Path(config.data_dir) / "sms.log"
    if not path.exists():
        return []
    codes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if _digits(entry["phone"]) == _digits(phone):
            codes.append(re.search(r"\b(\d{4})\b", entry["text"])[1])
    return codes


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


# The demo billing registry has this phone for Exportadora Andina; any other phone is a stranger's.
COMPANY_PHONE = "+593 4 000 0000"
OTHER_PHONE = "+593991112233"


async def _request_code(client, config, phone: str = COMPANY_PHONE) -> tuple[str, str]:
    resp = await client.post(
        "/api/v1/registration/phone",
        json={"tax_id": ANDINA, "email_index": 1, "phone": phone, **(await api_human(client))},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["expires_in"] == 900
    return body["request_token"], _sms_codes(config, phone)[-1]


FINISH = {
    "full_name": "Jorge Jefe",
    "username": "jjefe",
    "password": "Andina2026clave",
    "password_confirm": "Andina2026clave",
}


async def test_lookup_shows_masked_emails_on_file_or_the_unknown_tax_id_message(client):
    resp = await client.post("/api/v1/registration/lookup", json={"tax_id": ANDINA.lower()})
    assert resp.status == 200
    body = await resp.json()
    assert body["emails"] == [
        {"index": 0, "masked": "l*******a@a****a.example"},
        {"index": 1, "masked": "j**e@a****a.example"},
    ]
    assert "andina.example" not in json.dumps(body).replace("a****a.example", "")

    unknown = await client.post("/api/v1/registration/lookup", json={"tax_id": "0999999999001"})
    assert unknown.status == 404
    error = await api_error(unknown)
    assert error["code"] == "unknown_tax_id" and "soporte@terminal.example" in error["message"]

    unknown = await client.post(
        "/api/v1/registration/phone",
        json={"tax_id": "0999999999001", "email_index": 0, "phone": OTHER_PHONE, **(await api_human(client))},
    )
    assert (await api_error(unknown))["code"] == "unknown_tax_id"
    out_of_range = await client.post(
        "/api/v1/registration/phone",
        json={"tax_id": ANDINA, "email_index": 5, "phone": OTHER_PHONE, **(await api_human(client))},
    )
    assert out_of_range.status == 400 and "email_index" in (await api_error(out_of_range))["fields"]


async def test_code_to_the_companys_phone_completes_an_active_account(client, config):
    token, code = await _request_code(client, config)
    assert re.fullmatch(r"\d{4}", code)
    text = json.loads((Path(config.data_dir) / "sms.log").read_text().splitlines()[-1])["text"]
    assert code in text and "código" in text  # Spanish by default

    wrong = f"{(int(code) + 1) % 10_000:04d}"
    resp = await client.post("/api/v1/registration/complete", json={"request_token": token, "code": wrong, **FINISH})
    assert resp.status == 400
    assert (await api_error(resp))["fields"] == {"code": "El código de confirmación no es correcto."}

    resp = await client.post("/api/v1/registration/complete", json={"request_token": token, "code": code, **FINISH})
    assert resp.status == 201
    body = await resp.json()
    assert body["email"] == "jefe@andina.example" and body["status"] == "active"

    # The phone on file proved the company, so the account works at once and belongs to it.
    me = await (
        await client.get("/api/v1/me", headers=bearer(await api_token(client, "jjefe", "Andina2026clave")))
    ).json()
    assert me["profile"]["company_name"] == "Exportadora Andina S.A." and me["profile"]["role"] == "customer"
    assert db_rows(config, "SELECT phone FROM users WHERE username = 'jjefe'") == [("+59340000000",)]

    # The request is spent.
    again = await client.post("/api/v1/registration/complete", json={"request_token": token, "code": code, **FINISH})
    assert again.status == 400 and "code" in (await api_error(again))["fields"]


async def test_code_to_any_other_phone_gives_an_account_awaiting_approval(client, config, smtp):
    """Knowing a tax id and owning a phone must not open a company's account."""
    token, code = await _request_code(client, config, OTHER_PHONE)
    resp = await client.post("/api/v1/registration/complete", json={"request_token": token, "code": code, **FINISH})
    assert resp.status == 201
    assert (await resp.json())["status"] == "pending"
    # The owner of the address on file is told, and an administrator decides.
    assert "24 horas" in smtp.wait_for("jefe@andina.example", "registro recibido").get_content()
    pending = await api_login(client, "jjefe", "Andina2026clave")
    assert pending.status == 403 and (await api_error(pending))["code"] == "pending"
    assert db_rows(config, "SELECT status, phone FROM users WHERE username = 'jjefe'") == [("pending", "+593991112233")]


async def test_no_text_message_without_the_human_check(client, config):
    body = {"tax_id": ANDINA, "email_index": 0, "phone": OTHER_PHONE}
    for human in ({}, {**(await api_human(client)), "human_answer": "-1"}):
        resp = await client.post("/api/v1/registration/phone", json={**body, **human})
        assert resp.status == 400 and (await api_error(resp))["code"] == "human_check_failed"
    assert _sms_codes(config, OTHER_PHONE) == []


async def test_a_phone_gets_at_most_three_codes_an_hour(client, config):
    for _ in range(3):
        await _request_code(client, config, OTHER_PHONE)
    resp = await client.post(
        "/api/v1/registration/phone",
        json={"tax_id": ANDINA, "email_index": 0, "phone": OTHER_PHONE, **(await api_human(client))},
    )
    assert resp.status == 429
    error = await api_error(resp)
    assert error["code"] == "too_many_codes" and "phone" in error["fields"]
    assert len(_sms_codes(config, OTHER_PHONE)) == 3
    # Another phone is not held up.
    await _request_code(client, config, "+593987654321")


async def test_five_wrong_codes_kill_the_request(client, config):
    users_before = count(config, "users")
    token, code = await _request_code(client, config)
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    for _ in range(5):
        resp = await client.post(
            "/api/v1/registration/complete", json={"request_token": token, "code": wrong, **FINISH}
        )
        assert (await api_error(resp))["fields"] == {"code": "El código de confirmación no es correcto."}
    resp = await client.post("/api/v1/registration/complete", json={"request_token": token, "code": code, **FINISH})
    assert resp.status == 400
    assert (await api_error(resp))["fields"] == {"code": "El código de confirmación expiró; solicite uno nuevo."}
    assert count(config, "users") == users_before
    assert db_rows(config, "SELECT attempts FROM one_time_tokens WHERE purpose = 'phone_registration'") == [(5,)]

    # A new code works.
    token, code = await _request_code(client, config)
    resp = await client.post("/api/v1/registration/complete", json={"request_token": token, "code": code, **FINISH})
    assert resp.status == 201


async def test_complete_with_a_forged_request_token_is_refused(client, config):
    resp = await client.post(
        "/api/v1/registration/complete", json={"request_token": "forged", "code": "1234", **FINISH}
    )
    assert resp.status == 400 and "code" in (await api_error(resp))["fields"]


# --- language ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "message"),
    [
        ("", {}, "Usuario o contraseña incorrectos."),
        ("?lang=en", {}, "Wrong user name or password."),
        ("", {"Accept-Language": "en-GB,en;q=0.9"}, "Wrong user name or password."),
        ("", {"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8, es;q=0.5"}, "Wrong user name or password."),
        ("", {"Accept-Language": "es-EC"}, "Usuario o contraseña incorrectos."),
        ("?lang=es", {"Accept-Language": "en"}, "Usuario o contraseña incorrectos."),
    ],
    ids=["default-spanish", "query-en", "header-en", "header-ranked", "header-es", "query-wins"],
)
async def test_messages_follow_the_chosen_language(client, query, headers, message):
    body = {"login": "andina", "password": "wrong-password-1", **(await api_human(client))}
    resp = await client.post(f"/api/v1/auth/login{query}", json=body, headers=headers)
    assert (await api_error(resp))["message"] == message


async def test_sms_and_field_errors_in_english(client, config):
    resp = await client.post(
        "/api/v1/registration/phone?lang=en",
        json={"tax_id": ANDINA, "email_index": 0, "phone": "+593990000001", **(await api_human(client))},
    )
    assert resp.status == 200
    text = json.loads((Path(config.data_dir) / "sms.log").read_text().splitlines()[-1])["text"]
    assert text.startswith("Your Portgate confirmation code is ")
    resp = await client.post("/api/v1/registration", json={}, headers={"Accept-Language": "en"})
    assert set((await api_error(resp))["fields"].values()) == {"This field is required."}
