"""My account in the JSON API: read and change the signed-in person's name, e-mail, phone and language."""

from __future__ import annotations

from aiohttp import web

from server.accounts import my_account
from server.accounts.common import require_person
from server.accounts.my_account_views import save_account
from server.openapi import ApiDocs, B, S, obj
from server.web import DB, json_body

routes = web.RouteTableDef()

ACCOUNT = obj(username=S, full_name=S, email=S, phone=S, language={"enum": ["es", "en"]})


async def _account_json(request: web.Request, user_id: int) -> dict[str, str]:
    row = await request.app[DB].read(my_account.my_account, user_id)
    assert row is not None  # the principal's own account
    return dict(row)


@routes.get("/api/v1/account")
async def account(request: web.Request) -> web.Response:
    principal = require_person(request, profile=False)
    return web.json_response({"account": await _account_json(request, principal.user_id)})


@routes.put("/api/v1/account")
async def account_save(request: web.Request) -> web.Response:
    principal = require_person(request, profile=False)
    saved = await save_account(request, principal, await json_body(request))
    return web.json_response(
        {
            "account": await _account_json(request, principal.user_id),
            "email_confirmation_sent": bool(saved["email_confirmation_sent"]),
        }
    )


def document_routes(docs: ApiDocs) -> None:
    """Add My account to the OpenAPI document."""
    docs.add(
        "/api/v1/account",
        "get",
        "My account: user name, name, e-mail, phone, language",
        tag="accounts",
        profile=False,
        errors=(403,),
        response=obj(account=ACCOUNT),
    )
    docs.add(
        "/api/v1/account",
        "put",
        "Change my name, phone and language; a new e-mail is mailed a link and takes effect when it is opened "
        "(the password changes at /api/v1/password)",
        tag="accounts",
        profile=False,
        errors=(400, 403),
        body=obj(full_name=S, email=S, phone=S, language={"enum": ["es", "en"]}),
        response=obj(account=ACCOUNT, email_confirmation_sent=B),
    )
