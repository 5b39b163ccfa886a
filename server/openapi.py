"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Each area adds its paths to the app's :class:`ApiDocs` (``app[API_DOCS]``) when it is set up; a test
checks that every ``/api/v1`` route the app serves is documented, so the spec cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

ERROR = {"$ref": "#/components/schemas/Error"}


def _op(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    auth: bool = True,
    profile: bool = True,
    tag: str,
    errors: tuple[int, ...] = (400,),
    params: list[dict] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            str(status): {
                "description": "OK",
                "content": {"application/json": {"schema": closed(response or {"type": "object"})}},
            }
        },
    }
    # A portal token acts only through a chosen profile that has the right role: 403 otherwise. Any request
    # may carry a parameter no column can store (a NUL, half a character), refused with 400 where input enters.
    for code in sorted({400, *errors, *((401,) if auth else ()), *((403,) if auth and profile else ())}):
        op["responses"][str(code)] = {"description": "Error", "content": {"application/json": {"schema": ERROR}}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not auth:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


class ApiDocs:
    """The OpenAPI paths of one app, added by each area as it is set up."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}

    def add(self, path: str, method: str, summary: str, **kwargs: Any) -> None:
        """Document one operation (see :func:`_op` for the keyword arguments)."""
        self.paths.setdefault(path, {})[method.lower()] = _op(summary, **kwargs)

    def spec(self) -> dict[str, Any]:
        return _spec(self.paths)


API_DOCS: web.AppKey[ApiDocs] = web.AppKey("api_docs", ApiDocs)


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to others (``additionalProperties:
    false``): an answer that gains or renames a field without the document fails the conformance test."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: closed(value) for key, value in schema.items()}
    if "properties" in schema:
        copy.setdefault("additionalProperties", False)
    return copy


def obj(**props: Any) -> dict[str, Any]:
    required = [k.rstrip("_") for k in props if not k.endswith("_")]
    return {"type": "object", "properties": {k.rstrip("_"): v for k, v in props.items()}, "required": required}


S = {"type": "string"}
I = {"type": "integer"}  # noqa: E741
B = {"type": "boolean"}
NULLABLE_S = {"type": ["string", "null"]}
NULLABLE_I = {"type": ["integer", "null"]}

OK = obj(ok={"const": True})


def path_param(name: str) -> dict[str, Any]:
    """A required integer id in the path (``/…/{name}``)."""
    return {"name": name, "in": "path", "required": True, "schema": I}


def query_param(name: str, schema: dict[str, Any] = S, description: str = "") -> dict[str, Any]:
    """An optional query parameter."""
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    return {**param, "description": description} if description else param


def _spec(paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portgate API",
            "version": "1.0.0",
            "description": "Customer portal and gate-kiosk protocol. Errors are "
            '`{"error": {"code", "message", "fields"}}` with a stable code. Any call may answer 503 '
            "(`busy`, or `storage_unavailable` when the server's disk is full or failing) with "
            "`Retry-After`: nothing was saved; send the same request again later.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": obj(error=obj(code=S, message=S, fields={"type": "object", "additionalProperties": S}))
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[API_DOCS].spec())


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
