"""The billing registry in the JSON API (``/api/v1/billing/companies``): the page's rules and roles.

The list pages by name (``?after=`` the previous page's ``next_after``); adding, editing and importing
write in one transaction, so a refused field or CSV row leaves the registry as it was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.accounts import registry
from server.accounts.list_query import paging_params
from server.forms import ValidationFailed
from server.i18n import Msg
from server.openapi import NULLABLE_I, ApiDocs, B, I, S, closed, obj, query_param
from server.web import DB, ApiError, json_body, not_found, path_id, require

routes = web.RouteTableDef()

STAFF = ("billing_clerk", "admin")
COMPANIES = "/api/v1/billing/companies"
COMPANY_FIELDS = ("id", "tax_id", "name", "emails", "phone", "kind", "in_registry")
INVALID = Msg("Some fields are not valid.")


def company_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in COMPANY_FIELDS}


def _form_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as the page's form: ``emails`` is a list of addresses here, one comma-separated field there."""
    emails = body.get("emails")
    if isinstance(emails, list) and all(isinstance(e, str) and "," not in e for e in emails):
        emails = ",".join(emails)
    elif emails is not None:
        raise ApiError(400, "invalid", INVALID, {"emails": Msg("Send a list of e-mail addresses.")})
    return {k: body.get(k) for k in ("tax_id", "name", "phone")} | {"emails": emails}


@routes.get(COMPANIES)
async def list_companies(request: web.Request) -> web.Response:
    require(request, *STAFF)
    query = registry.parse_registry_query(request.query)
    rows, next_after = await request.app[DB].read(registry.companies_page, query)
    return web.json_response({"companies": [company_json(r) for r in rows], "next_after": next_after})


@routes.post(COMPANIES)
async def save_company(request: web.Request) -> web.Response:
    """Adds a company (201), or updates the one with the same tax id (200), as the page's form does."""
    principal = require(request, *STAFF)
    form = _form_of(await json_body(request))
    saved = await request.app[DB].write(registry.save_company, form, actor_id=principal.user_id, now=time.time())
    row = await request.app[DB].read(registry.get_company, saved["id"])
    assert row is not None  # saved just now; companies are never deleted
    return web.json_response(company_json(row), status=201 if saved["added"] else 200)


@routes.get(r"/api/v1/billing/companies/{company_id:\d+}")
async def get_company(request: web.Request) -> web.Response:
    require(request, *STAFF)
    row = await request.app[DB].read(registry.get_company, path_id(request, "company_id"))
    if row is None:
        raise not_found()
    return web.json_response(company_json(row))


@routes.put(r"/api/v1/billing/companies/{company_id:\d+}")
async def edit_company(request: web.Request) -> web.Response:
    principal = require(request, *STAFF)
    company_id = path_id(request, "company_id")
    form = _form_of(await json_body(request))
    edit = registry.edit_company
    row = await request.app[DB].write(edit, company_id, form, actor_id=principal.user_id, now=time.time())
    if row is None:
        raise not_found()
    return web.json_response(company_json(row))


@routes.post(f"{COMPANIES}/import")
async def import_companies(request: web.Request) -> web.Response:
    """All or nothing: the CSV text in ``csv``; a bad row answers 400 naming its line and field."""
    principal = require(request, *STAFF)
    text = (await json_body(request)).get("csv")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "invalid", INVALID, {"csv": Msg("Send the CSV text.")})
    try:
        rows = await asyncio.to_thread(registry.parse_companies_csv, text)
    except ValidationFailed as exc:  # the page's field is the file; here it is the body's csv
        raise ApiError(400, "invalid", INVALID, {"csv": exc.errors["file"]}) from None
    save = registry.save_companies
    result = await request.app[DB].write(save, rows, principal.user_id, now=time.time())
    return web.json_response({"added": result.added, "updated": result.updated}, status=201)


# --- the OpenAPI document -----------------------------------------------------------------------

COMPANY = obj(
    id=I,
    tax_id=S,
    name=S,
    emails={"type": "array", "items": S},
    phone=S,
    kind={"enum": ["customer", "prospect", "operator"]},
    in_registry={**B, "description": "false for a prospect that registered itself and billing has not listed"},
)
COMPANY_BODY = obj(
    tax_id={**S, "pattern": "^[A-Za-z0-9&Ññ-]{8,20}$", "description": "RUC/RFC, 8 to 20 letters and digits"},
    name={**S, "minLength": 1, "maxLength": 200},
    emails={"type": "array", "items": {**S, "format": "email"}, "minItems": 1, "maxItems": 10},
    phone_=S,
)
COMPANY_ID = [{"name": "company_id", "in": "path", "required": True, "schema": I}]


def document_routes(docs: ApiDocs) -> None:
    """Add the billing registry to the OpenAPI document."""
    docs.add(
        COMPANIES,
        "get",
        "Companies by name, a page at a time (keyset: pass next_after as after); q matches the start of the name "
        "or tax id",
        tag="billing",
        params=[query_param("q", S, "the start of the company's name or tax id"), *paging_params("companies")],
        response=obj(companies={"type": "array", "items": COMPANY}, next_after=NULLABLE_I),
    )
    docs.add(
        COMPANIES,
        "post",
        "Add a company to the registry (201), or update the one with the same tax id (200)",
        tag="billing",
        status=201,
        body=COMPANY_BODY,
        response=COMPANY,
    )
    # Updating answers 200 with the same company.
    docs.paths[COMPANIES]["post"]["responses"]["200"] = {
        "description": "Updated",
        "content": {"application/json": {"schema": closed(COMPANY)}},
    }
    docs.add(
        f"{COMPANIES}/import",
        "post",
        "Add or update every row of a CSV (tax_id,name,emails,phone) or none; a bad row is named by line and field",
        tag="billing",
        status=201,
        body=obj(csv=S),
        response=obj(added=I, updated=I),
    )
    one_company = {"tag": "billing", "params": COMPANY_ID, "response": COMPANY}
    docs.add(f"{COMPANIES}/{{company_id}}", "get", "One company of the registry", errors=(404,), **one_company)
    docs.add(
        f"{COMPANIES}/{{company_id}}",
        "put",
        "Edit a company, its tax id included (not one another company has)",
        errors=(400, 404),
        body=COMPANY_BODY,
        **one_company,
    )
