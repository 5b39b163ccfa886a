"""Registration with a texted code in the portal (seed 001, section 11), as a person fills the pages.

RFC → the masked e-mails on file → a mobile phone typed twice → a 4-digit code, texted through the
HTTP SMS sender to a local stand-in gateway → the code, a name and a password. Real app, real SQLite,
real SMTP; the gateway is the only stand-in (no SMS network here).
"""

from __future__ import annotations

import pytest

from tests.dbaccess import db_execute
from tests.helpers import alert_text, db_rows, field_errors, get_form, hidden_fields, login, submit
from tests.sms_gateway import (  # noqa: F401 (the fixtures)
    ANDINA,
    COMPANY_PHONE,
    NEW_ACCOUNT,
    OTHER_PHONE,
    gateway_fixture,
    sms_app_fixture,
    sms_client_fixture,
    sms_settings,
)


@pytest.fixture
def client(sms_client):
    return sms_client


async def _emails_step(client) -> str:
    resp = await submit(client, "/register/phone", {"tax_id": ANDINA.lower()})
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def _send_code(client, phone: str = COMPANY_PHONE, confirm: str | None = None, email_index: str = "1"):
    page = await _emails_step(client)
    data = {"tax_id": ANDINA, "email_index": email_index, "phone": phone, "phone_confirm": confirm or phone}
    return await client.post("/register/phone", data={**hidden_fields(page), **data})


async def _finish(client, code: str, **changes: str):
    page, hidden = await get_form(client, "/register/phone/code")
    return await client.post("/register/phone/code", data={**hidden, "code": code, **NEW_ACCOUNT, **changes})


async def test_an_existing_customer_registers_with_the_texted_code_and_signs_in(client, gateway):
    page = await _emails_step(client)
    assert "l*******a@a****a.example" in page and "j**e@a****a.example" in page
    # Nothing about the account beyond the masks: no address, no company name.
    assert "andina.example" not in page.replace("a****a.example", "") and "Exportadora" not in page

    resp = await _send_code(client)
    assert resp.url.path == "/register/phone/code"
    page = await resp.text()
    assert alert_text(page) == "Le enviamos un código de 4 dígitos por SMS a +59340000000."
    assert "j**e@a****a.example" in page and "jefe@andina.example" not in page
    code = gateway.code_for(COMPANY_PHONE)
    assert "token" not in str(resp.url) and "code" not in resp.url.query  # the request rides in a cookie only

    resp = await _finish(client, code)
    assert resp.url.path == "/login"
    assert alert_text(await resp.text()) == "Su cuenta está lista. Ya puede ingresar."
    await login(client, "jjefe", "Andina2026clave")
    # The request is spent: its page sends the visitor back to the start.
    again = await client.get("/register/phone/code")
    assert again.url.path == "/register/phone"


async def test_every_step_marks_its_wrong_field_in_english_too(client, gateway):
    await client.get("/lang/en?next=/register/phone")  # the language switch a visitor clicks
    resp = await submit(client, "/register/phone", {"tax_id": "0999999999001"})
    assert resp.status == 400
    assert "soporte@terminal.example" in field_errors(await resp.text())["tax_id"]

    page = await _emails_step(client)
    data = {"tax_id": ANDINA, "phone": "+593 99 111 2233", "phone_confirm": "+593 99 111 2234"}
    resp = await client.post("/register/phone", data={**hidden_fields(page), **data})
    assert resp.status == 400
    assert field_errors(await resp.text()) == {
        "email_index": "This field is required.",
        "phone_confirm": "The phone numbers do not match.",
    }
    assert gateway.received == []


async def test_a_wrong_code_is_marked_a_password_typo_costs_no_attempt_and_five_misses_end_the_request(client, gateway):
    await _send_code(client)
    code = gateway.code_for(COMPANY_PHONE)
    wrong = f"{(int(code) + 1) % 10_000:04d}"

    resp = await _finish(client, code, password_confirm="Otra2026clave")
    assert resp.status == 400
    assert field_errors(await resp.text()) == {"password_confirm": "Las contraseñas no coinciden."}
    resp = await _finish(client, code[:3])  # a digit short: a typo, marked, no attempt spent
    assert field_errors(await resp.text()) == {"code": "Ingrese los 4 dígitos del código que le enviamos."}

    for _ in range(4):
        resp = await _finish(client, wrong)
        assert resp.status == 400
        assert field_errors(await resp.text()) == {"code": "El código de confirmación no es correcto."}
    resp = await _finish(client, wrong)  # the fifth miss
    assert resp.url.path == "/register/phone"
    assert alert_text(await resp.text()) == "El código se ingresó mal demasiadas veces; solicite uno nuevo."

    # Even the right code no longer opens that request.
    resp = await client.post("/register/phone/code", data={**(await get_form(client, "/login"))[1], "code": code})
    assert resp.url.path == "/register/phone"


async def test_the_code_expires(client, gateway, config):
    await _send_code(client)
    code = gateway.code_for(COMPANY_PHONE)
    # Fifteen minutes pass (the stored expiry is moved back rather than waiting).
    db_execute(config, "UPDATE one_time_tokens SET expires_at = expires_at - 900 WHERE purpose = 'phone_registration'")
    resp = await _finish(client, code)
    assert resp.url.path == "/register/phone"
    assert alert_text(await resp.text()) == "El código de confirmación expiró; solicite uno nuevo."
    assert db_rows(config, "SELECT COUNT(*) FROM users WHERE username = 'jjefe'") == [(0,)]


async def test_sending_codes_is_throttled_per_phone(client, gateway):
    for _ in range(3):
        assert (await _send_code(client)).url.path == "/register/phone/code"
    resp = await _send_code(client)
    assert resp.status == 429
    page = await resp.text()
    assert (
        field_errors(page)["phone"] == "Se enviaron demasiados códigos a este teléfono. Intente de nuevo en una hora."
    )
    assert 'value="+593 4 000 0000"' in page  # what was typed stays
    assert len(gateway.received) == 3


@pytest.mark.parametrize("sms_settings", [{"max_codes_per_address_per_hour": 2}])
async def test_one_address_cannot_have_texts_pumped_to_many_phones(client, gateway):
    for phone in ("+593 99 000 0001", "+593 99 000 0002"):
        assert (await _send_code(client, phone)).url.path == "/register/phone/code"
    resp = await _send_code(client, "+593 99 000 0003")
    assert resp.status == 429
    page = await resp.text()
    assert alert_text(page) == "Se solicitaron demasiados códigos desde su red. Intente de nuevo en una hora."
    assert 'value="+593 99 000 0003"' in page
    assert len(gateway.received) == 2


async def test_a_gateway_that_does_not_take_the_text_says_so_and_keeps_the_form(client, gateway):
    for _ in range(3):  # the first try and both retries
        gateway.answer(502)
    resp = await _send_code(client)
    assert resp.status == 503
    page = await resp.text()
    assert alert_text(page) == "No se pudo enviar el mensaje de texto. Inténtelo de nuevo en unos minutos."
    assert "j**e@a****a.example" in page and 'value="+593 4 000 0000"' in page
    assert (await client.get("/register/phone/code")).url.path == "/register/phone"  # no request was started


async def test_a_phone_not_on_file_gets_an_account_that_awaits_approval(client, gateway, smtp, config):
    await _send_code(client, OTHER_PHONE)
    resp = await _finish(client, gateway.code_for(OTHER_PHONE))
    assert resp.url.path == "/login"
    assert "espera aprobación" in alert_text(await resp.text())
    # The owner of the address on file learns of it, and whom to tell if it was not them.
    body = smtp.wait_for("jefe@andina.example", "registro recibido").get_content()
    assert "Espera aprobación (dentro de 24 horas)" in body and "Si no fue usted, escriba de inmediato" in body
    assert db_rows(config, "SELECT status, phone FROM users WHERE username = 'jjefe'") == [("pending", "+593991112233")]


async def test_the_same_phone_written_with_or_without_plus_shares_its_hourly_codes(client, gateway):
    for _ in range(3):
        assert (await _send_code(client, "+593 4 000 0000")).url.path == "/register/phone/code"
    resp = await _send_code(client, "593 4 000 0000")  # the same number, its + left out
    assert resp.status == 429
    assert field_errors(await resp.text())["phone"].startswith("Se enviaron demasiados códigos a este teléfono.")
    assert len(gateway.received) == 3


async def test_the_same_phone_typed_twice_with_dashes_or_brackets_is_taken(client, gateway):
    resp = await _send_code(client, "+593-4-000-0000")
    assert resp.url.path == "/register/phone/code", field_errors(await resp.text())
    resp = await _send_code(client, "+593 (4) 000-0000", confirm="+593-4-000 0000")
    assert resp.url.path == "/register/phone/code", field_errors(await resp.text())
    assert len(gateway.texts_to(COMPANY_PHONE)) == 2


async def test_the_chosen_address_stays_chosen_after_an_error(client, gateway):
    page = await _emails_step(client)
    data = {"tax_id": ANDINA, "email_index": "1", "phone": "+593 99 111 2233", "phone_confirm": "+593 99 111 2234"}
    resp = await client.post("/register/phone", data={**hidden_fields(page), **data})
    assert resp.status == 400
    page = await resp.text()
    assert '<input type="radio" name="email_index" value="1" checked>' in page
    assert '<input type="radio" name="email_index" value="0">' in page


async def test_a_company_with_no_address_on_file_is_told_to_write_to_us_not_asked_to_choose(client, gateway, config):
    db_execute(config, "UPDATE companies SET emails = '[]' WHERE tax_id = ?", (ANDINA,))
    page = await _emails_step(client)
    assert alert_text(page) == (
        "No tenemos ninguna dirección de correo registrada para esta empresa. "
        "Escriba a soporte@terminal.example para que un agente le ayude a terminar su registro."
    )
    assert 'name="email_index"' not in page and 'name="phone"' not in page and 'id="submit"' not in page
    # A hand-made post of step 2 gets the same answer, and no code.
    data = {"tax_id": ANDINA, "email_index": "0", "phone": COMPANY_PHONE, "phone_confirm": COMPANY_PHONE}
    resp = await client.post("/register/phone", data={**hidden_fields(page), **data})
    page = await resp.text()
    assert "Ingrese un número" not in page and "soporte@terminal.example" in alert_text(page)
    assert gateway.received == []


async def test_the_chosen_address_hears_of_an_account_made_active_at_once(client, gateway, smtp):
    await _send_code(client)
    resp = await _finish(client, gateway.code_for(COMPANY_PHONE))
    assert alert_text(await resp.text()) == "Su cuenta está lista. Ya puede ingresar."
    mail = smtp.wait_for("jefe@andina.example", "una cuenta nueva usa su dirección de correo")
    body = mail.get_content()
    assert "usuario jjefe" in body and "terminado en 0000" in body and "Ya puede usarse." in body
    assert "Si no fue usted, escriba de inmediato a soporte@terminal.example" in body


async def test_after_ten_wrong_codes_in_a_day_the_page_says_so_and_sends_no_more(client, gateway):
    for _ in range(2):  # two requests, each ended by its five misses
        await _send_code(client)
        code = gateway.code_for(COMPANY_PHONE)
        for _ in range(5):
            resp = await _finish(client, f"{(int(code) + 1) % 10_000:04d}")
    assert resp.url.path == "/register/phone"
    resp = await _send_code(client)
    assert resp.status == 429
    assert alert_text(await resp.text()) == (
        "Se ingresaron demasiados códigos incorrectos para este teléfono o empresa hoy. Intente de nuevo "
        "mañana, o regístrese con un enlace enviado a su correo."
    )
    assert len(gateway.received) == 2
