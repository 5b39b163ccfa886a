"""The billing registry pages: list and search companies, add or update one, import a CSV file."""

from __future__ import annotations

import functools
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server.accounts import registry
from server.csv_import import import_upload
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed
from server.i18n import Msg
from server.web import DB, require

routes = web.RouteTableDef()

STAFF = ("billing_clerk", "admin")


async def _companies_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    """The registry a page at a time, by name, like the API's list (a bad cursor shows the first page)."""
    errors = {}
    try:
        query = registry.parse_registry_query(request.query)
    except ValidationFailed as exc:
        errors = exc.errors
        query = registry.RegistryQuery(search=str(request.query.get("q", ""))[:100])
    rows, next_after = await request.app[DB].read(registry.companies_page, query)
    search = {"q": query.search} if query.search else {}
    context = {
        "companies": rows,
        "q": query.search,
        "values": {},
        "list_errors": errors,
        "next_url": f"/billing/companies?{urlencode({**search, 'after': next_after})}" if next_after else "",
        "first_url": f"/billing/companies?{urlencode(search)}" if query.after else "",
        **extra,
    }
    return render_with_flash(request, "accounts/companies.html", context, 400 if errors and status == 200 else status)


@routes.get("/billing/companies")
async def companies(request: web.Request) -> web.Response:
    require(request, *STAFF)
    return await _companies_page(request)


@routes.post("/billing/companies")
async def company_save(request: web.Request) -> web.Response:
    principal = require(request, *STAFF)
    form = await request.post()
    try:
        await request.app[DB].write(registry.save_company, form, actor_id=principal.user_id, now=time.time())
    except ValidationFailed as exc:
        values = {k: str(form.get(k, ""))[:300] for k in ("tax_id", "name", "emails", "phone")}
        return await _companies_page(request, 400, errors=exc.errors, values=values)
    raise redirect_with_flash(request, "/billing/companies", Msg("Company saved."))


@routes.post("/billing/companies/import")
async def company_import(request: web.Request) -> web.Response:
    principal = require(request, *STAFF)
    save = functools.partial(registry.save_companies, now=time.time())
    result = await import_upload(request, request.app[DB], registry.parse_companies_csv, save, principal.user_id)
    if isinstance(result, Msg):
        return await _companies_page(request, 400, import_error=result)
    imported = Msg(
        "Imported: %(added)s added, %(updated)s updated.", {"added": result.added, "updated": result.updated}
    )
    raise redirect_with_flash(request, "/billing/companies", imported)
