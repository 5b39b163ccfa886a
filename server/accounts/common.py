"""What the account pages and API share: rendering, mail, the human check, safe redirects, link tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.accounts import passwords, registration, sessions
from server.accounts.registration import register_user
from server.accounts.sessions import LoginOutcome, NewSession
from server.accounts.users import token_record
from server.i18n import N_, Msg, translate
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.security import hash_password_off_loop, verify_password
from server.web import (
    CONFIG,
    DB,
    HUMAN_CHECK,
    ApiError,
    Principal,
    client_address,
    lang_of,
    render_page,
    require,
)

page = render_page

NOT_A_ROBOT = Msg("Please confirm you are not a robot: the verification was not passed.")


def require_person(request: web.Request, *roles: str, profile: bool = True) -> Principal:
    """Like ``require``, for what only a person may do to their own account (an integration token acts
    on its creator's account, but must never change its password, e-mail or profile)."""
    principal = require(request, *roles, profile=profile)
    if principal.is_integration:
        raise ApiError(403, "integration_token", Msg("An integration token cannot do this; sign in as a person."))
    return principal


def safe_next(value: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become "//evil.example".
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
        and " " not in value
    ):
        return value
    return "/home"


def account_mail(to: str, lang: str, subject: str, body: str, params: dict[str, Any]) -> Mail:
    """A mail about an account, in ``lang``: queue it with its change (``write_with_mail``)."""
    return Mail(to, translate(lang, subject) % params, translate(lang, body) % params)


def registration_received(user: dict[str, Any], lang: str) -> Mail:
    return account_mail(
        user["email"],
        lang,
        N_("Portgate: registration received"),
        N_(
            "Hello %(name)s,\n\nYour registration for %(company)s was received successfully. "
            "Your account is awaiting approval, which takes up to 24 hours; we will write to you "
            "when it is approved.\n\nThis message was sent automatically; please do not reply."
        ),
        {"name": user["full_name"], "company": user["company_name"]},
    )


async def register_and_notify(request: web.Request, clean: dict[str, Any]) -> dict[str, Any]:
    """Self-registration (page or API): the pending account, and the mail saying it awaits approval.

    Raises ``UnknownTaxId`` for a tax id not in the registry, ``ValidationFailed`` for a name or
    e-mail another account has.
    """
    lang = lang_of(request)
    password_hash = await hash_password_off_loop(clean["password"])
    return await write_with_mail(
        request.app,
        register_user,
        clean,
        password_hash,
        lang,
        time.time(),
        client_address(request),
        mail=lambda user: [registration_received(user, lang)],
    )


async def register_prospect_and_notify(request: web.Request, clean: dict[str, Any]) -> dict[str, Any]:
    """A prospect's registration (page or API): the pending account, and the mail with its user name
    and the link to choose a password. Raises ``ValidationFailed`` for a tax id or e-mail on file."""
    lang = lang_of(request)
    public_url = request.app[CONFIG].public_url

    def mail(registered: tuple[dict[str, Any], str]) -> list[Mail]:
        user, token = registered
        link = f"{public_url}/password/set?token={token}"
        body = N_(
            "Hello %(name)s,\n\nYour registration was received. Your user name is %(username)s; choose "
            "your password here (valid for 72 hours):\n%(link)s\n\nYour account awaits approval, "
            "which takes up to 24 hours."
        )
        params = {"name": user["contact"], "username": user["username"], "link": link}
        return [account_mail(user["email"], lang, N_("Portgate: registration received"), body, params)]

    user, _token = await write_with_mail(
        request.app, registration.register_prospect, clean, lang, time.time(), mail=mail
    )
    return user


async def start_password_reset(request: web.Request, email: str) -> None:
    """Mail a reset link when ``email`` belongs to an active account; the caller answers the same either way."""
    public_url = request.app[CONFIG].public_url

    def mail(found: tuple[dict[str, Any], str] | None) -> list[Mail]:
        if found is None:
            return []
        user, token = found
        body = N_(
            "Hello %(name)s,\n\nTo choose a new password open this link (valid for one hour):\n"
            "%(link)s\n\nIf you did not ask for it, ignore this message."
        )
        params = {"name": user["full_name"], "link": f"{public_url}/password/reset?token={token}"}
        return [account_mail(email, user["language"], N_("Portgate: reset your password"), body, params)]

    await write_with_mail(request.app, passwords.start_password_reset, email, time.time(), mail=mail)


#: The same answer whether or not the address has an account: nobody learns who has one.
RESET_SENT = Msg("If the address belongs to an active account, we have sent it a link to choose a new password.")


def tax_id_unknown_message(request: web.Request) -> Msg:
    return Msg(
        "The tax id (RUC/RFC) you entered is not in our billing system. For help, write to %(email)s.",
        {"email": request.app[CONFIG].support_email},
    )


def human_challenge(request: web.Request) -> dict[str, Any]:
    """A fresh human check for a form; a hosted widget also gets its provider's script URL."""
    challenge = request.app[HUMAN_CHECK].challenge()
    if challenge.get("kind") == "hosted" and not challenge.get("script"):
        challenge["script"] = request.app[CONFIG].security.hosted_captcha_script
    return challenge


async def human_passed(request: web.Request, fields: Mapping[str, Any]) -> bool:
    """True when a form or JSON body carries a passed human check (``human_token``/``human_answer``,
    or a hosted captcha's response); a repeated form field counts by its first value."""
    answers = {name: str(fields.get(name, "")) for name in fields}
    return await request.app[HUMAN_CHECK].verify(answers, client_address(request))


#: How often a sign-in checks the password again when the account's hash changed during the check.
SIGN_IN_ROUNDS = 3


async def sign_in(request: web.Request, login: str, password: str, session: NewSession) -> LoginOutcome:
    """Check credentials with throttling and, when proven, open ``session`` (page or API).

    The password checks (argon2, slow on purpose) run on a thread outside any transaction: inside
    the write they held every other write meanwhile (on SQLite, every gate's redeem). The write
    that decides reads the accounts again, locked, and the password is checked again if a hash
    changed in between, so a sign-in racing a password change or a deactivation decides on the new state.
    """
    db = request.app[DB]
    limits = sessions.LoginLimits.of(request.app[CONFIG].security)
    address, now = client_address(request), time.time()
    for _round in range(SIGN_IN_ROUNDS):
        hashes = await db.read(sessions.hashes_to_check, login, address, now, limits)
        verified = await asyncio.to_thread(sessions.check_passwords, hashes, password)
        try:
            return await db.write(sessions.login_check, login, verified, address, now, limits, session)
        except sessions.StaleCheck:
            continue
    return LoginOutcome("wrong_credentials")  # the password kept changing under it: try again later


async def change_own_password(request: web.Request, principal: Principal, current: str, new: str) -> bool:
    """The owner's change of password (page or API); False when ``current`` is not their password.

    As for a sign-in, the password is checked (argon2) outside the transaction, and again if the
    account's hash changed meanwhile (a reset link used at the same moment).
    """
    db = request.app[DB]
    new_hash = await hash_password_off_loop(new)
    for _round in range(SIGN_IN_ROUNDS):
        checked = await db.read(passwords.password_hash_of, principal.user_id)
        if checked is None or not await asyncio.to_thread(verify_password, checked, current):
            return False
        now = time.time()
        if await db.write(passwords.change_password, principal.user_id, checked, new_hash, principal.session_hash, now):
            return True
    return False


def login_refusal(outcome: LoginOutcome, lock_minutes: int, now: float) -> Msg:
    """Why a sign-in was refused, as the person trying it should read it."""
    if outcome.status == "pending":
        return Msg("Your account is awaiting approval. You will receive an e-mail when it is approved.")
    if outcome.status == "rejected":
        return Msg("Your account is not enabled. Contact support.")
    if outcome.status == "locked":
        minutes = max(1, round((outcome.locked_until - now) / 60))
        return Msg("Too many failed attempts: this account is locked for %(minutes)s minutes.", {"minutes": minutes})
    if outcome.status == "too_many_accounts":
        return Msg("Many accounts use this tax id: sign in with your user name or e-mail.")
    if outcome.status == "choice_expired":
        return Msg("The choice of account has expired; sign in again.")
    if outcome.status == "not_among_choices":
        return Msg("Choose one of the accounts shown, or type its user name or e-mail.")
    if outcome.status == "address_throttled":
        return Msg(
            "Too many failed attempts from your address. Try again in %(minutes)s minutes.", {"minutes": lock_minutes}
        )
    return Msg("Wrong user name or password.")


def invalid_link() -> ApiError:
    return ApiError(400, "invalid_link", Msg("This link is not valid or has expired."))


async def link_record(request: web.Request, purpose: str, now: float) -> dict[str, Any]:
    """The e-mailed link (``token`` in the query, or in the posted form) for ``purpose``, with its token;
    an error page when it is unknown, used or expired."""
    token = request.query.get("token", "") if request.method == "GET" else str((await request.post()).get("token", ""))
    record = await request.app[DB].read(token_record, token, purpose, now)
    if record is None:
        raise invalid_link()
    return {**record, "token": token}
