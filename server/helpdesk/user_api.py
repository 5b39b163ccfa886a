"""Company users JSON API (``/api/v1/company/users``) for a customer administrator."""

from __future__ import annotations

from aiohttp import web

from server.helpdesk import company_users
from server.helpdesk.user_views import add_company_user
from server.web import DB, ApiError, json_body, not_found, path_id, require

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


@routes.delete(r"/api/v1/company/users/{user_id:\d+}")
async def api_remove_user(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    try:
        user = await request.app[DB].write(
            company_users.remove_user, principal.company_id, path_id(request, "user_id"), principal.user_id
        )
    except company_users.CompanyUserError as exc:
        if exc.code == "not_found":
            raise not_found() from None
        raise ApiError(409, exc.code, exc.message) from None
    return web.json_response({"removed": user["id"]})
