"""The integration tokens in the JSON API (administrators): list, create (the token shown once), revoke."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.accounts import integrations
from server.openapi import NULLABLE_S, ApiDocs, I, S, obj
from server.web import DB, json_body, not_found, path_id, require

routes = web.RouteTableDef()


def _token_json(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "role", "created_by", "created_at", "last_used_at", "revoked_at")
    return {key: row[key] for key in keys}


@routes.get("/api/v1/integrations")
async def list_tokens(request: web.Request) -> web.Response:
    require(request, "admin")
    rows = await request.app[DB].read(integrations.list_tokens)
    return web.json_response({"tokens": [_token_json(r) for r in rows]})


@routes.post("/api/v1/integrations")
async def create_token(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    fields = integrations.validate_token_request(await json_body(request))
    assert principal.company_id is not None  # a profile is chosen: require() saw its role
    row, token = await request.app[DB].write(
        integrations.create_token, fields, principal.user_id, principal.company_id, time.time()
    )
    return web.json_response({"token": token, "integration": _token_json(row)}, status=201)


@routes.delete("/api/v1/integrations/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    token_id = path_id(request, "token_id")
    row = await request.app[DB].write(integrations.revoke_token, token_id, principal.user_id, time.time())
    if row is None:
        raise not_found()
    return web.json_response({"integration": _token_json(row)})


TOKEN = obj(
    id=I,
    name=S,
    role={"enum": list(integrations.INTEGRATION_ROLES)},
    created_by=S,
    created_at=S,
    last_used_at=NULLABLE_S,
    revoked_at=NULLABLE_S,
)


def document_routes(docs: ApiDocs) -> None:
    """Add the integration tokens to the OpenAPI document."""
    docs.add(
        "/api/v1/integrations",
        "get",
        "Integration tokens (administrators): name, role, creator, created, last used, revoked",
        tag="integrations",
        errors=(),
        response=obj(tokens={"type": "array", "items": TOKEN}),
    )
    docs.add(
        "/api/v1/integrations",
        "post",
        "Create a named token bound to a role; `token` is shown only in this answer. "
        "Send it as `Authorization: Bearer <token>`; every use goes to the audit log",
        tag="integrations",
        status=201,
        body=obj(name=S, role={"enum": list(integrations.INTEGRATION_ROLES)}),
        response=obj(token=S, integration=TOKEN),
    )
    docs.add(
        "/api/v1/integrations/{token_id}",
        "delete",
        "Revoke a token: its next request is refused",
        tag="integrations",
        errors=(404,),
        params=[{"name": "token_id", "in": "path", "required": True, "schema": I}],
        response=obj(integration=TOKEN),
    )
