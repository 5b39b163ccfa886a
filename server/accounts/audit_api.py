"""The audit log in the JSON API (``/api/v1/admin/audit``): the administrator's page, filtered and paged by keyset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.accounts import audit
from server.accounts.list_query import paging_params
from server.openapi import NULLABLE_I, NULLABLE_S, ApiDocs, I, S, obj, query_param
from server.web import CONFIG, DB, require

routes = web.RouteTableDef()

EVENT_FIELDS = ("id", "at", "event", "user_id", "username", "company_id", "company_name", "detail", "address")


def event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in EVENT_FIELDS}


@routes.get("/api/v1/admin/audit")
async def list_events(request: web.Request) -> web.Response:
    require(request, "admin")
    query = audit.parse_audit_query(request.query)
    rows, next_after = await request.app[DB].read(audit.audit_page, query, request.app[CONFIG].zone)
    return web.json_response({"events": [event_json(r) for r in rows], "next_after": next_after})


# --- the OpenAPI document -----------------------------------------------------------------------

EVENT = obj(
    id=I,
    at={**S, "description": "when, in UTC (ISO 8601)"},
    event={**S, "description": "what happened, e.g. company.added, user.disabled, purchase.confirmed"},
    user_id={**NULLABLE_I, "description": "who did it; null for the system or a person not signed in"},
    username=NULLABLE_S,
    company_id=NULLABLE_I,
    company_name=NULLABLE_S,
    detail=S,
    address={**S, "description": "the client's network address, when it came from a request"},
)
DAY = {"type": "string", "format": "date"}


def document_routes(docs: ApiDocs) -> None:
    """Add the audit log to the OpenAPI document."""
    docs.add(
        "/api/v1/admin/audit",
        "get",
        "Audit events, newest first, filtered, a page at a time (keyset: pass next_after as after)",
        tag="audit",
        params=[
            query_param("event", S, "only this event, e.g. company.added"),
            query_param("user_id", I, "only what this user did"),
            query_param("company_id", I, "only events about this company"),
            query_param("from", DAY, "from this day (YYYY-MM-DD) of the terminal's time zone"),
            query_param("to", DAY, "to this day (YYYY-MM-DD, included) of the terminal's time zone"),
            *paging_params("events"),
        ],
        response=obj(events={"type": "array", "items": EVENT}, next_after=NULLABLE_I),
    )
