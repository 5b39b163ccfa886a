"""User administration in the JSON API (``/api/v1/admin/users``): the same rules and role as the pages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.accounts import approvals, user_admin
from server.accounts.approval_views import decide, registration_id
from server.accounts.user_admin_views import apply_change, create_and_invite, refusal_error, send_reset_link
from server.helpdesk import user_api
from server.openapi import OK, ApiDocs, I, S, obj, query_param
from server.web import DB, json_body, path_id, require

routes = web.RouteTableDef()

PROFILE_FIELDS = ("id", "role", "company_id", "company_name", "tax_id")
USER_FIELDS = ("id", "username", "email", "full_name", "status")


def user_json(user: dict[str, Any]) -> dict[str, Any]:
    """A user as the API shows it, with every profile it holds."""
    return {
        **{k: user[k] for k in USER_FIELDS},
        "profiles": [{k: p[k] for k in PROFILE_FIELDS} for p in user["profiles"]],
    }


async def _user_answer(request: web.Request, user_id: int, status: int = 200) -> web.Response:
    user = await request.app[DB].read(user_admin.user_detail, user_id)
    if user is None:
        raise refusal_error(user_admin.NOT_FOUND)
    return web.json_response(user_json(user), status=status)


@routes.get("/api/v1/admin/users")
async def api_users(request: web.Request) -> web.Response:
    require(request, "admin")
    query = user_admin.parse_user_query(request.query)
    users, next_after = await request.app[DB].read(user_admin.list_users, query)
    return web.json_response({"users": [user_json(u) for u in users], "next_after": next_after})


@routes.post("/api/v1/admin/users")
async def api_create_user(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    body = await json_body(request)
    roles = body.get("roles")
    user = await create_and_invite(request, principal, body, roles if isinstance(roles, list) else [])
    return await _user_answer(request, user["id"], 201)


@routes.get(r"/api/v1/admin/users/{user_id:\d+}")
async def api_user(request: web.Request) -> web.Response:
    require(request, "admin")
    return await _user_answer(request, path_id(request, "user_id"))


@routes.post(r"/api/v1/admin/users/{user_id:\d+}/profiles")
async def api_grant(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id = path_id(request, "user_id")
    body = await json_body(request)
    values = user_admin.validate_grant({"company_id": body.get("company_id"), "role": body.get("role")})
    await apply_change(request, principal, user_admin.grant_profile, user_id, values)
    return await _user_answer(request, user_id, 201)


@routes.delete(r"/api/v1/admin/users/{user_id:\d+}/profiles/{profile_id:\d+}")
async def api_revoke(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id, profile_id = path_id(request, "user_id"), path_id(request, "profile_id")
    await apply_change(request, principal, user_admin.revoke_profile, user_id, profile_id)
    return await _user_answer(request, user_id)


@routes.post(r"/api/v1/admin/users/{user_id:\d+}/disable")
@routes.post(r"/api/v1/admin/users/{user_id:\d+}/enable")
async def api_disable_or_enable(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id = path_id(request, "user_id")
    await apply_change(request, principal, user_admin.set_enabled, user_id, request.path.endswith("/enable"))
    return await _user_answer(request, user_id)


@routes.post(r"/api/v1/admin/users/{user_id:\d+}/password-reset")
async def api_reset_link(request: web.Request) -> web.Response:
    require(request, "admin")
    await send_reset_link(request, path_id(request, "user_id"))
    return web.json_response({"ok": True})


# --- registrations awaiting approval ------------------------------------------------------------

REGISTRATION_FIELDS = ("id", "username", "email", "full_name", "phone", "company_id", "company_name", "tax_id")


@routes.get("/api/v1/admin/registrations")
async def api_registrations(request: web.Request) -> web.Response:
    require(request, "admin")
    pending = await request.app[DB].read(approvals.pending_registrations)
    return web.json_response({"registrations": [{k: r[k] for k in REGISTRATION_FIELDS} for r in pending]})


@routes.post(r"/api/v1/admin/registrations/{user_id:\d+}/approve")
@routes.post(r"/api/v1/admin/registrations/{user_id:\d+}/reject")
async def api_decide(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id = registration_id(request)
    body = await json_body(request)
    approve = request.path.endswith("/approve")
    profiles = body.get("profiles") if approve else None
    if profiles is not None and not isinstance(profiles, list):
        profiles = [profiles]  # not a list: each entry is checked, and this one is refused as such
    values = approvals.validate_decision(body, profiles)
    await decide(request, principal, user_id, approve, values)
    return await _user_answer(request, user_id)


# --- the OpenAPI document -----------------------------------------------------------------------

ADMIN_PROFILE = obj(id=I, role=S, company_id=I, company_name=S, tax_id=S)
ADMIN_USER = obj(
    id=I,
    username=S,
    email=S,
    full_name=S,
    status={"enum": ["active", "pending", "disabled", "rejected"]},
    profiles={"type": "array", "items": ADMIN_PROFILE},
)
USER_ID = {"name": "user_id", "in": "path", "required": True, "schema": I}
PROFILE_ID = {"name": "profile_id", "in": "path", "required": True, "schema": I}


LIST_PARAMS = [
    query_param("q", S, "search in name, user name and e-mail"),
    query_param("role", S, "only users holding this profile role"),
    query_param("company_id", I, "only users with a profile at this company"),
    query_param("status", S, "active, pending, disabled or rejected"),
    query_param("after", I, "the next_after of the previous page"),
    query_param("limit", I, "users per page, 1 to 200 (default 50)"),
]


def document_routes(docs: ApiDocs) -> None:
    """Add user administration and the approval of registrations to the OpenAPI document."""
    _document_list(docs, "users")
    _document_registrations(docs)
    # A customer administrator's profile editing came with this work; the helpdesk area's set-up
    # does not document it yet (see server.helpdesk.docs).
    user_api.document_routes(docs)


def _document_registrations(docs: ApiDocs) -> None:
    registration = obj(id=I, username=S, email=S, full_name=S, phone=S, company_id=I, company_name=S, tax_id=S)
    docs.add(
        "/api/v1/admin/registrations",
        "get",
        "Accounts awaiting approval, oldest first",
        tag="users",
        errors=(),
        response=obj(registrations={"type": "array", "items": registration}),
    )
    note = {"type": "string", "maxLength": 1000, "description": "mailed to the registrant"}
    docs.add(
        "/api/v1/admin/registrations/{user_id}/approve",
        "post",
        "Approve an account, optionally choosing its profiles (default: the ones it registered with) with a note",
        tag="users",
        params=[USER_ID],
        errors=(400, 404),
        body=obj(profiles_={"type": "array", "items": obj(company_id=I, role=S)}, note_=note),
        response=ADMIN_USER,
    )
    docs.add(
        "/api/v1/admin/registrations/{user_id}/reject",
        "post",
        "Reject an account awaiting approval, with an optional note",
        tag="users",
        params=[USER_ID],
        errors=(400, 404),
        body=obj(note_=note),
        response=ADMIN_USER,
    )


def _document_list(docs: ApiDocs, tag: str) -> None:
    """The list and creating a user."""
    docs.add(
        "/api/v1/admin/users",
        "get",
        "Users by name, searched and filtered, a page at a time (keyset: pass next_after as after)",
        tag=tag,
        params=LIST_PARAMS,
        response=obj(users={"type": "array", "items": ADMIN_USER}, next_after={"type": ["integer", "null"]}),
    )
    docs.add(
        "/api/v1/admin/users",
        "post",
        "Create a staff or customer user with profiles at one company; they get a link to choose a password",
        tag=tag,
        status=201,
        body=obj(
            full_name=S,
            username=S,
            email=S,
            email_confirm=S,
            phone_=S,
            company_id=I,
            roles={"type": "array", "items": S},
        ),
        response=ADMIN_USER,
    )
    _document_one_user(docs, tag)


def _document_one_user(docs: ApiDocs, tag: str) -> None:
    """One user: read it, grant and revoke profiles, disable and enable, send a password link."""
    one_user = {"tag": tag, "params": [USER_ID], "response": ADMIN_USER}
    docs.add("/api/v1/admin/users/{user_id}", "get", "One user with its profiles", errors=(404,), **one_user)
    docs.add(
        "/api/v1/admin/users/{user_id}/profiles",
        "post",
        "Grant a profile (role at a company); staff roles only at the operator company",
        errors=(400, 404),
        status=201,
        body=obj(company_id=I, role=S),
        **one_user,
    )
    docs.add(
        "/api/v1/admin/users/{user_id}/profiles/{profile_id}",
        "delete",
        "Take a profile away (not your own last administrator profile)",
        tag=tag,
        params=[USER_ID, PROFILE_ID],
        errors=(404, 409),
        response=ADMIN_USER,
    )
    for change, summary in (
        ("disable", "Disable a user: their sessions and API tokens stop working at once (not yourself)"),
        ("enable", "Enable a disabled user"),
    ):
        docs.add(f"/api/v1/admin/users/{{user_id}}/{change}", "post", summary, errors=(404, 409), **one_user)
    docs.add(
        "/api/v1/admin/users/{user_id}/password-reset",
        "post",
        "E-mail an active user a link to choose a new password",
        tag=tag,
        params=[USER_ID],
        errors=(404, 409),
        response=OK,
    )
