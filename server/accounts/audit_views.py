"""The administrator's view of the audit log: filtered by event, user, company and days, paged like the API."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server.accounts import audit
from server.accounts.common import page
from server.accounts.user_admin import company_by_tax_id
from server.forms import ValidationFailed
from server.i18n import Msg
from server.web import CONFIG, DB, require

routes = web.RouteTableDef()

#: The page's filters; it names a user and a company as people know them, the API by id.
FILTERS = ("event", "username", "company_tax_id", "from", "to")


async def _ids_of(request: web.Request, filters: dict[str, str], errors: dict[str, Msg]) -> dict[str, str]:
    """The API's query for the page's filters: the user and the company looked up by name and tax id."""
    params = {k: filters[k] for k in ("event", "from", "to")} | {"after": request.query.get("after", "")}
    db = request.app[DB]
    if username := filters["username"]:
        user_id = await db.read(audit.user_id_named, username)
        if user_id is None:
            errors["username"] = Msg("No user has this user name.")
        params["user_id"] = str(user_id or "")
    if tax_id := filters["company_tax_id"]:
        company = await db.read(company_by_tax_id, tax_id)
        if company is None:
            errors["company_tax_id"] = Msg("No company has this tax id in the billing registry.")
        params["company_id"] = str(company["id"]) if company else ""
    return params


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    require(request, "admin")
    filters = {k: request.query.get(k, "").strip()[:100] for k in FILTERS}
    errors: dict[str, Msg] = {}
    params = await _ids_of(request, filters, errors)
    try:
        query = audit.parse_audit_query(params)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        query = audit.AuditQuery()  # the newest events, with each bad filter's message beside it
    rows, next_after = await request.app[DB].read(audit.audit_page, query, request.app[CONFIG].zone)
    shown = {k: v for k, v in filters.items() if v}
    context = {
        "rows": rows,
        "filters": filters,
        "errors": errors,
        "next_url": f"/admin/audit?{urlencode({**shown, 'after': next_after})}" if next_after else "",
        "first_url": f"/admin/audit?{urlencode(shown)}" if query.after else "",
    }
    return page(request, "accounts/audit.html", context, 400 if errors else 200)
