"""Company users JSON API (``/api/v1/company/users``) for a customer administrator."""

from __future__ import annotations

import time

from aiohttp import web

from server.accounts.user_admin_views import refusal_error
from server.accounts.users import Refused
from server.helpdesk import company_users
from server.helpdesk.user_views import add_company_user, set_company_roles
from server.openapi import ApiDocs, I, S, obj
from server.web import DB, json_body, path_id, require

routes = web.RouteTableDef()


@routes.get("/api/v1/company/users")
async def api_users(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    rows = await request.app[DB].read(company_users.list_users, principal.company_id)
    keys = ("id", "username", "email", "full_name", "status", "roles")
    return web.json_response({"users": [{k: r[k] for k in keys} for r in rows]})


@routes.post("/api/v1/company/users")
async def api_add_user(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    body = await json_body(request)
    roles = body.get("roles")
    roles = [str(r) for r in roles] if isinstance(roles, list) else []
    user = await add_company_user(request, principal, body, roles)
    return web.json_response(
        {"id": user["id"], "username": user["username"], "email": user["email"], "roles": user["roles"]}, status=201
    )


@routes.put(r"/api/v1/company/users/{user_id:\d+}/profiles")
async def api_set_profiles(request: web.Request) -> web.Response:
    """The profiles the user holds at the company, replaced by ``roles``."""
    principal = require(request, "customer_admin")
    body = await json_body(request)
    roles = body.get("roles")
    try:
        user = await set_company_roles(
            request, principal, path_id(request, "user_id"), [str(r) for r in roles] if isinstance(roles, list) else []
        )
    except Refused as exc:
        raise refusal_error(exc) from None
    return web.json_response({"id": user["id"], "username": user["username"], "roles": user["roles"]})


@routes.delete(r"/api/v1/company/users/{user_id:\d+}")
async def api_remove_user(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    try:
        user = await request.app[DB].write(
            company_users.remove_user, principal.company_id, path_id(request, "user_id"), principal.user_id, time.time()
        )
    except Refused as exc:
        raise refusal_error(exc) from None
    return web.json_response({"removed": user["id"]})


def document_routes(docs: ApiDocs) -> None:
    """The company-user operations added here (the others are in ``server.helpdesk.docs``)."""
    docs.add(
        "/api/v1/company/users/{user_id}/profiles",
        "put",
        "Customer administrator: replace the profiles (customer/customer_admin) a company user holds",
        tag="company users",
        errors=(400, 403, 404, 409),
        params=[{"name": "user_id", "in": "path", "required": True, "schema": I}],
        body=obj(roles={"type": "array", "items": S}),
        response=obj(id=I, username=S, roles={"type": "array", "items": S}),
    )
