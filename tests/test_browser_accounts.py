"""The accounts portal in Chromium against a real server process, in Spanish and in English.

register → "awaiting approval" e-mail → admin approves → approval e-mail → log in → profile and
company → home with menu → change password → log out → log in with the new password.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from server.demo import DEMO_PASSWORD
from tests.browser import answer_human_check

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

TEXT = {
    "es": {
        "switch": "ES",
        "registered": "Su registro fue exitoso. Su cuenta está en espera de aprobación (dentro de 24 horas)",
        "received_subject": "registro recibido",
        "pending": "Su cuenta está en espera de aprobación.",
        "received_body": "24 horas",
        "approved_subject": "su cuenta fue aprobada",
        "role": "Cliente",
        "welcome": "Bienvenido/a, {name}",
        "working_as": "Está trabajando como Cliente de Exportadora Andina S.A.",
        "menu_home": "Inicio",
        "changed": "Su contraseña ha sido cambiada.",
        "required": "Este campo es obligatorio.",
        "sign_in": "Ingresar",
    },
    "en": {
        "switch": "EN",
        "registered": "Your registration was successful. Your account awaits approval (within 24 hours)",
        "received_subject": "registration received",
        "pending": "Your account is awaiting approval.",
        "received_body": "24 hours",
        "approved_subject": "your account is approved",
        "role": "Customer",
        "welcome": "Welcome, {name}",
        "working_as": "You are working as Customer for Exportadora Andina S.A.",
        "menu_home": "Home",
        "changed": "Your password has been changed.",
        "required": "This field is required.",
        "sign_in": "Sign in",
    },
}
FIELDS = ("full_name", "username", "email", "email_confirm", "tax_id", "phone", "password", "password_confirm")
LANGS = pytest.mark.parametrize("lang", ["es", "en"])


def log_in(page, login: str, password: str, lang: str) -> None:
    """Sign in on the login page, choosing the language there, and land on the profile page."""
    page.goto("/login")
    page.select_option("#f-language", lang)
    page.fill("#f-login", login)
    page.fill("#f-password", password)
    answer_human_check(page)
    page.click("#submit")
    expect(page).to_have_url(re.compile(r"/profiles"))
    expect(page.locator("html")).to_have_attribute("lang", lang)


def open_registration(page, lang: str) -> None:
    """From the login page: pick the language with the ES/EN switch, then follow "Create account"."""
    page.goto("/login")
    page.locator(".lang-switch").get_by_text(TEXT[lang]["switch"], exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.click("#create-account")
    expect(page).to_have_url(re.compile(r"/register$"))


@LANGS
def test_register_approve_login_profile_menu_password_logout(new_page, browser_smtp, lang):
    text = TEXT[lang]
    person = {
        "full_name": f"Lucía Torres {lang.upper()}",
        "username": f"ltorres_{lang}",
        "email": f"lucia.{lang}@andina.example",
        "tax_id": "0991234567001",
        "phone": "+593 99 123 4567",
        "password": "Puerto2026seguro",
    }

    # 1. Register, every field filled in.
    user = new_page()
    open_registration(user, lang)
    user.screenshot(path=f"/tmp/portgate-register-{lang}.png", full_page=True)
    for name in FIELDS:
        user.fill(f"#f-{name}", person[name.removesuffix("_confirm")])
    answer_human_check(user)
    user.click("#submit")
    expect(user).to_have_url(re.compile(r"/register/done$"))
    expect(user.locator("#message")).to_contain_text(text["registered"])

    mail = browser_smtp.wait_for(person["email"], text["received_subject"])
    assert text["received_body"] in mail.get_content() and "Exportadora Andina S.A." in mail.get_content()

    # 2. The account waits for approval.
    user.goto("/login")
    user.select_option("#f-language", lang)
    user.fill("#f-login", person["username"])
    user.fill("#f-password", person["password"])
    answer_human_check(user)
    user.click("#submit")
    expect(user.locator(".alert-error")).to_contain_text(text["pending"])

    # 3. The admin approves it.
    admin = new_page()
    log_in(admin, "admin", DEMO_PASSWORD, lang)
    admin.click("#enter")
    admin.locator(".sidemenu a[href='/admin/registrations']").click()
    row = admin.locator(f"tr[data-username='{person['username']}']")
    expect(row).to_contain_text(person["email"])
    row.locator("button.approve").click()
    expect(admin.locator(f"tr[data-username='{person['username']}']")).to_have_count(0)
    approved = browser_smtp.wait_for(person["email"], text["approved_subject"])
    assert person["username"] in approved.get_content()

    # 4. The user signs in, sees the profile with its company, enters, finds the menu.
    log_in(user, person["username"], person["password"], lang)
    option = user.locator("label.profile-option")
    expect(option).to_have_count(1)
    expect(option).to_contain_text(text["role"])
    expect(option.locator(".company")).to_have_text("Exportadora Andina S.A.")
    user.click("#enter")
    expect(user).to_have_url(re.compile(r"/home$"))
    expect(user.locator("h1")).to_have_text(text["welcome"].format(name=person["full_name"]))
    expect(user.locator("#home-company")).to_have_text(text["working_as"])
    expect(user.locator(".sidemenu a[aria-current='page']")).to_have_text(text["menu_home"])
    expect(user.locator(".sidemenu a[href='/admin/registrations']")).to_have_count(0)  # not an admin's menu
    expect(user.locator(".profile-indicator")).to_contain_text("Exportadora Andina S.A.")
    user.screenshot(path=f"/tmp/portgate-home-{lang}.png")

    # 5. Change password from the top bar.
    user.click("#change-password")
    user.fill("#f-current_password", person["password"])
    user.fill("#f-new_password", "Muelle2027nuevo")
    user.fill("#f-new_password_confirm", "Muelle2027nuevo")
    user.click("#submit")
    expect(user.locator(".alert-success")).to_have_text(text["changed"])

    # 6. Log out, then the new password works.
    user.click("#logout")
    expect(user).to_have_url(re.compile(r"/login"))
    expect(user.locator("h1")).to_have_text(text["sign_in"])
    user.goto("/home")
    expect(user).to_have_url(re.compile(r"/login"))  # the session really ended
    log_in(user, person["username"], "Muelle2027nuevo", lang)
    user.click("#enter")
    expect(user.locator("#home-company")).to_have_text(text["working_as"])


@LANGS
def test_empty_registration_marks_every_field_at_the_field(new_page, lang):
    page = new_page()
    open_registration(page, lang)
    page.click("#submit")
    expect(page.locator("p.error")).to_have_count(len(FIELDS))
    for name in FIELDS:
        error = page.locator(f"p.error[data-field='{name}']")
        expect(error).to_be_visible()
        expect(error).to_have_text(f"⚠ {TEXT[lang]['required']}")
        # The message sits in the same field container as its input, and the input points at it.
        same_field = error.evaluate(
            "(el, name) => el.closest('.field') !== null"
            " && el.closest('.field').contains(document.getElementById('f-' + name))",
            name,
        )
        assert same_field, name
        expect(page.locator(f"#f-{name}")).to_have_attribute("aria-describedby", f"e-{name}")
        expect(page.locator(f"#f-{name}")).to_have_attribute("aria-invalid", "true")
    # A person sees the error right under its own input, not somewhere else on the page.
    for name in FIELDS:
        field_box = page.locator(f"#f-{name}").bounding_box()
        error_box = page.locator(f"p.error[data-field='{name}']").bounding_box()
        assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 40, name
        assert abs(error_box["x"] - field_box["x"]) < 5, name
    page.screenshot(path=f"/tmp/portgate-register-errors-{lang}.png", full_page=True)


def test_login_page_looks_like_a_login_page(new_page):
    page = new_page()
    page.goto("/login")
    page.screenshot(path="/tmp/portgate-login.png", full_page=True)
    card = page.locator("section.card").bounding_box()
    viewport = page.viewport_size
    # A centred card, not a form glued to the page's edge.
    assert abs((card["x"] + card["width"] / 2) - viewport["width"] / 2) < 40
    for name in ("login", "password"):
        box = page.locator(f"#f-{name}").bounding_box()
        assert box["width"] > card["width"] * 0.8, name
