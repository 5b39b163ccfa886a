"""The accounts API in the OpenAPI document: login, profiles, password, registration."""

from __future__ import annotations

from server.openapi import OK, ApiDocs, I, S, obj

PROFILE = obj(id=I, role=S, role_label=S, company_id=I, company_name=S)


SIGNED_IN = obj(token=S, expires_in=I, profiles={"type": "array", "items": PROFILE})
#: A sign-in by a tax id that several accounts share, with a password more than one of them has.
CHOOSE_ACCOUNT = obj(
    choice_token={"type": "string", "description": "send it to /api/v1/auth/login/choose within 5 minutes"},
    accounts={"type": "array", "items": obj(index=I, masked=S)},
)


def document_routes(docs: ApiDocs) -> None:
    """Add the accounts API to the OpenAPI document."""
    _document_sign_in(docs)
    _document_profiles(docs)
    _document_registration(docs)
    _document_prospect_and_forgot(docs)


def _document_sign_in(docs: ApiDocs) -> None:
    """The human check, login (by user name, e-mail or tax id) and logout."""
    docs.add(
        "/api/v1/human-check",
        "get",
        "A human-check challenge to send back with login/registration",
        auth=False,
        tag="accounts",
        errors=(),
        response={
            "oneOf": [
                obj(kind={"const": "builtin"}, question={"type": "string", "description": "e.g. '3 + 4'"}, token=S),
                obj(kind={"const": "hosted"}, site_key=S, script=S),
            ]
        },
    )
    docs.add(
        "/api/v1/auth/login",
        "post",
        "Log in with user name, e-mail or the company's tax id (RUC/RFC); returns a bearer token, or "
        "(a tax id several accounts share, and a password more than one of them has) the masked accounts to "
        "choose among",
        auth=False,
        tag="accounts",
        errors=(400, 401, 403, 429),
        body=obj(login=S, password=S, human_token_=S, human_answer_=S, captcha_response_=S, language_=S),
        response={"oneOf": [SIGNED_IN, CHOOSE_ACCOUNT]},
    )
    docs.add(
        "/api/v1/auth/login/choose",
        "post",
        "Finish a login by tax id: the account by its index, or by its user name or e-mail (`login`)",
        auth=False,
        tag="accounts",
        errors=(400, 403, 429),
        body=obj(choice_token=S, index_=I, login_=S, language_=S),
        response=SIGNED_IN,
    )
    docs.add(
        "/api/v1/auth/logout", "post", "End this token's session", tag="accounts", errors=(), profile=False, response=OK
    )


def _document_profiles(docs: ApiDocs) -> None:
    """The signed-in user, profiles and password."""
    docs.add(
        "/api/v1/me",
        "get",
        "The signed-in user and the chosen profile",
        tag="accounts",
        errors=(),
        profile=False,
        response=obj(
            user_id=I,
            username=S,
            full_name=S,
            email=S,
            language=S,
            profile={
                "oneOf": [obj(id=I, role=S, company_id=I, company_name=S), {"type": "null"}],
                "description": "null until a profile is chosen",
            },
        ),
    )
    docs.add(
        "/api/v1/profiles",
        "get",
        "The profiles (role + company) this user holds",
        tag="accounts",
        errors=(),
        profile=False,
        response=obj(profiles={"type": "array", "items": PROFILE}),
    )
    docs.add(
        "/api/v1/profiles/select",
        "post",
        "Choose the profile this token acts as",
        tag="accounts",
        profile=False,
        errors=(400, 403, 404),
        body=obj(profile_id=I),
        response=obj(profile=obj(id=I, role=S, company_name=S)),
    )
    docs.add(
        "/api/v1/password",
        "post",
        "Change password (other sessions end); not with an integration token",
        tag="accounts",
        profile=False,
        errors=(400, 403),
        body=obj(current_password=S, new_password=S, new_password_confirm=S),
        response=OK,
    )


def _document_prospect_and_forgot(docs: ApiDocs) -> None:
    """A prospect's registration, and a forgotten password."""
    docs.add(
        "/api/v1/registration/prospect",
        "post",
        "A company not yet a customer registers; the contact gets a mail with the user name and a link to "
        "choose the password, and the account awaits approval",
        auth=False,
        tag="accounts",
        status=201,
        body=obj(
            company_name=S,
            tax_id=S,
            contact=S,
            email=S,
            email_confirm=S,
            phone=S,
            phone_confirm=S,
            human_token_=S,
            human_answer_=S,
            captcha_response_=S,
        ),
        response=obj(user_id=I, username=S, status={"const": "pending"}),
    )
    docs.add(
        "/api/v1/password/forgot",
        "post",
        "Mail a link to choose a new password (valid one hour); the same answer whether or not the address "
        "has an account",
        auth=False,
        tag="accounts",
        status=202,
        body=obj(email=S, human_token_=S, human_answer_=S, captcha_response_=S),
        response=obj(ok={"const": True}, message=S),
    )


def _document_registration(docs: ApiDocs) -> None:
    """Self-registration, and an existing customer's registration with a texted code."""
    docs.add(
        "/api/v1/registration",
        "post",
        "Self-registration; the account awaits approval",
        auth=False,
        tag="accounts",
        status=201,
        body=obj(
            full_name=S,
            username=S,
            email=S,
            email_confirm=S,
            tax_id=S,
            phone=S,
            password=S,
            password_confirm=S,
            human_token_=S,
            human_answer_=S,
        ),
        response=obj(user_id=I, status={"const": "pending"}),
    )
    docs.add(
        "/api/v1/registration/lookup",
        "post",
        "Existing customer: masked e-mails on file for a tax id",
        auth=False,
        tag="accounts",
        errors=(400, 404),
        body=obj(tax_id=S),
        response=obj(tax_id=S, emails={"type": "array", "items": obj(index=I, masked=S)}),
    )
    docs.add(
        "/api/v1/registration/phone",
        "post",
        "Existing customer (mobile): send a 4-digit code by SMS (valid 15 minutes; at most 3 codes per phone, and "
        "[sms] max_codes_per_address_per_hour per client address, an hour, or after 10 wrong codes for the phone or "
        "company in 24 hours: 429 `too_many_codes`; 503 `sms_not_sent` when the SMS gateway did not take it)",
        auth=False,
        tag="accounts",
        errors=(400, 404, 429, 503),
        body=obj(tax_id=S, email_index=I, phone=S, human_token_=S, human_answer_=S, captcha_response_=S),
        response=obj(request_token=S, expires_in=I),
    )
    docs.add(
        "/api/v1/registration/complete",
        "post",
        "Existing customer (mobile): code + password → account (active when the phone is the company's on file, "
        "else awaiting approval); after 5 wrong codes the request is spent: ask for a new code; after 10 wrong "
        "codes for the phone or company in 24 hours, every request is refused: 429 `too_many_codes`",
        auth=False,
        tag="accounts",
        status=201,
        errors=(400, 429),
        body=obj(request_token=S, code=S, full_name=S, username=S, password=S, password_confirm=S),
        response=obj(user_id=I, username=S, email=S, status=S),
    )
