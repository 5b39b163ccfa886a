"""The administrator's view of the audit log."""

from __future__ import annotations

from aiohttp import web

from server.accounts.audit import recent_audit
from server.accounts.common import page
from server.web import DB, require

routes = web.RouteTableDef()


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    require(request, "admin")
    rows = await request.app[DB].read(recent_audit, 200)
    return page(request, "accounts/audit.html", {"rows": rows})
