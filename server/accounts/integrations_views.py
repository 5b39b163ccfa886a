"""The administrator's integration tokens page: create one (shown once), list them, revoke one."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.accounts import integrations
from server.accounts.common import page
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed
from server.i18n import Msg
from server.web import DB, form_body, not_found, path_id, require

routes = web.RouteTableDef()

TEMPLATE = "accounts/integrations.html"


async def _tokens_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    rows = await request.app[DB].read(integrations.list_tokens)
    context = {"tokens": rows, "roles": integrations.INTEGRATION_ROLES, "values": {}, **extra}
    return render_with_flash(request, TEMPLATE, context, status)


@routes.get("/admin/integrations")
async def tokens_page(request: web.Request) -> web.Response:
    require(request, "admin")
    return await _tokens_page(request)


@routes.post("/admin/integrations")
async def token_create(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    form = await form_body(request)
    try:
        fields = integrations.validate_token_request(form)
    except ValidationFailed as exc:
        values = {"name": str(form.get("name", ""))[:100], "role": str(form.get("role", ""))[:40]}
        return await _tokens_page(request, 400, errors=exc.errors, values=values)
    assert principal.company_id is not None  # an admin profile is at the operator's company
    row, token = await request.app[DB].write(
        integrations.create_token, fields, principal.user_id, principal.company_id, time.time()
    )
    created = Msg("Token “%(name)s” created. Copy it now: it will not be shown again.", {"name": row["name"]})
    raise redirect_with_flash(request, "/admin/integrations", created, token=token)


@routes.get("/admin/integrations/{id}/revoke")
async def revoke_confirm(request: web.Request) -> web.Response:
    """Revoking cannot be undone: the administrator sees what it does and confirms."""
    require(request, "admin")
    row = await request.app[DB].read(integrations.token_by_id, path_id(request))
    if row is None or row["revoked_at"]:
        raise not_found()
    return page(request, "accounts/integration_revoke.html", {"token": row})


@routes.post("/admin/integrations/{id}/revoke")
async def token_revoke(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    row = await request.app[DB].write(integrations.revoke_token, path_id(request), principal.user_id, time.time())
    if row is None:
        raise not_found()
    revoked = Msg("Token “%(name)s” revoked: requests with it are refused from now on.", {"name": row["name"]})
    raise redirect_with_flash(request, "/admin/integrations", revoked)
