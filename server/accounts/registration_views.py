"""Registration pages: self-registration, an existing customer's e-mailed link, a prospect."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from server import forms
from server.accounts import registration
from server.accounts.common import (
    NOT_A_ROBOT,
    account_mail,
    human_challenge,
    human_passed,
    link_record,
    page,
    register_and_notify,
    register_prospect_and_notify,
    tax_id_unknown_message,
)
from server.accounts.users import UnknownTaxId
from server.flash import redirect_with_flash
from server.forms import FieldErrors, ValidationFailed
from server.i18n import N_, Msg
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.security import hash_password_off_loop
from server.web import CONFIG, DB, lang_of

routes = web.RouteTableDef()

REGISTER = "accounts/register.html"
CUSTOMER = "accounts/register_customer.html"
PROSPECT = "accounts/register_prospect.html"
REGISTER_FIELDS = ("full_name", "username", "email", "email_confirm", "tax_id", "phone")
PROSPECT_FIELDS = ("company_name", "tax_id", "contact", "email", "email_confirm", "phone", "phone_confirm")


def _form_page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A registration form with a fresh human check."""
    return page(request, template, {"human": human_challenge(request), **context}, status)


def _refused(request: web.Request, template: str, values: dict[str, str], errors: Mapping[str, Msg]) -> web.Response:
    """The form again, with what was typed and a message at each wrong field."""
    return _form_page(request, template, 400, values=values, errors=errors)


def _typed(form: Mapping[str, Any], names: tuple[str, ...], max_len: int = 300) -> dict[str, str]:
    """What the visitor typed, to show again in a refused form."""
    return {name: str(form.get(name, ""))[:max_len] for name in names}


async def _checked(
    request: web.Request,
    form: Mapping[str, Any],
    template: str,
    values: dict[str, str],
    validate: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> dict[str, Any] | web.Response:
    """The form's clean values, or the refused form: a wrong field, or a failed human check."""
    try:
        clean = validate(form)
    except ValidationFailed as exc:
        return _refused(request, template, values, exc.errors)
    if not await human_passed(request, form):
        return _form_page(request, template, 400, values=values, notice=NOT_A_ROBOT)
    return clean


@routes.get("/register")
async def register_form(request: web.Request) -> web.Response:
    return _form_page(request, REGISTER, values={})


@routes.post("/register")
async def register_submit(request: web.Request) -> web.Response:
    form = await request.post()
    values = _typed(form, REGISTER_FIELDS)
    minimum = request.app[CONFIG].security.password_min_length
    checked = await _checked(
        request, form, REGISTER, values, lambda data: registration.validate_registration(data, minimum)
    )
    if isinstance(checked, web.Response):
        return checked
    try:
        await register_and_notify(request, checked)
    except UnknownTaxId:
        return _refused(request, REGISTER, values, {"tax_id": tax_id_unknown_message(request)})
    except ValidationFailed as exc:
        return _refused(request, REGISTER, values, exc.errors)
    raise web.HTTPFound("/register/done")


@routes.get("/register/done")
async def register_done(request: web.Request) -> web.Response:
    received = Msg(
        "Your registration was successful. Your account awaits approval (within 24 hours); we have sent you an e-mail."
    )
    context = {"title": Msg("Registration received"), "message": received, "link": "/login"}
    return page(request, "accounts/message.html", context)


@routes.get("/register/customer")
async def customer_form(request: web.Request) -> web.Response:
    return _form_page(request, CUSTOMER, values={})


@routes.post("/register/customer")
async def customer_submit(request: web.Request) -> web.Response:
    """Step 1 (tax id → masked e-mails on file) and step 2 (chosen e-mail → link sent)."""
    form = await request.post()
    errors = FieldErrors()
    tax = forms.tax_id(form, "tax_id", errors)
    if errors:
        return _form_page(request, CUSTOMER, 400, values=_typed(form, ("tax_id",), 30), errors=errors)
    emails = await request.app[DB].read(registration.masked_emails, tax)
    if emails is None:
        unknown = {"tax_id": tax_id_unknown_message(request)}
        return _form_page(request, CUSTOMER, 400, values=_typed(form, ("tax_id",), 30), errors=unknown)
    shown: dict[str, Any] = {"values": {"tax_id": tax}, "emails": emails}
    if "email_index" not in form:
        return _form_page(request, CUSTOMER, **shown)
    index = forms.integer(form, "email_index", errors, minimum=0, maximum=len(emails) - 1)
    if errors or index is None:
        return _form_page(request, CUSTOMER, 400, errors=errors, **shown)
    if not await human_passed(request, form):
        return _form_page(request, CUSTOMER, 400, notice=NOT_A_ROBOT, **shown)
    finish_url, lang = f"{request.app[CONFIG].public_url}/register/finish", lang_of(request)
    await write_with_mail(
        request.app,
        registration.start_existing_registration,
        tax,
        index,
        time.time(),
        mail=lambda started: [_finish_link_mail(started[0], lang, f"{finish_url}?token={started[1]}")],
    )
    sent = Msg("We have sent a link to %(email)s to finish your registration.", {"email": emails[index]})
    raise redirect_with_flash(request, "/login", sent)


def _finish_link_mail(address: str, lang: str, link: str) -> Mail:
    return account_mail(
        address,
        lang,
        N_("Portgate: finish your registration"),
        N_(
            "Hello,\n\nTo finish creating your Portgate account open this link (valid for 24 hours):\n"
            "%(link)s\n\nIf you did not ask for it, ignore this message."
        ),
        {"link": link},
    )


@routes.get("/register/finish")
async def finish_form(request: web.Request) -> web.Response:
    record = await link_record(request, "finish_registration", time.time())
    context = {"token": record["token"], "email": record["email"], "values": {}}
    return page(request, "accounts/register_finish.html", context)


@routes.post("/register/finish")
async def finish_submit(request: web.Request) -> web.Response:
    now = time.time()
    record = await link_record(request, "finish_registration", now)
    form = await request.post()
    context = {
        "token": record["token"],
        "email": record["email"],
        "values": _typed(form, ("full_name", "username"), 200),
    }
    try:
        clean = registration.validate_finish(form, request.app[CONFIG].security.password_min_length, record["email"])
        await request.app[DB].write(
            registration.finish_existing_registration,
            record,
            clean,
            await hash_password_off_loop(clean["password"]),
            lang_of(request),
            now,
        )
    except ValidationFailed as exc:
        return page(request, "accounts/register_finish.html", {**context, "errors": exc.errors}, 400)
    ready = Msg("Your account is ready. You can now sign in.")
    raise redirect_with_flash(request, "/login", ready)


@routes.get("/register/prospect")
async def prospect_form(request: web.Request) -> web.Response:
    return _form_page(request, PROSPECT, values={})


@routes.post("/register/prospect")
async def prospect_submit(request: web.Request) -> web.Response:
    form = await request.post()
    values = _typed(form, PROSPECT_FIELDS)
    checked = await _checked(request, form, PROSPECT, values, registration.validate_prospect)
    if isinstance(checked, web.Response):
        return checked
    try:
        await register_prospect_and_notify(request, checked)
    except ValidationFailed as exc:
        return _refused(request, PROSPECT, values, exc.errors)
    raise web.HTTPFound("/register/done")
