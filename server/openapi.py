"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Each area contributes its paths with :func:`document`; a test checks that every ``/api/v1`` route
the app serves is documented, so the spec cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

PATHS: dict[str, dict[str, Any]] = {}

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
    # A portal token acts only through a chosen profile that has the right role: 403 otherwise.
    for code in sorted({*errors, *((401,) if auth else ()), *((403,) if auth and profile else ())}):
        op["responses"][str(code)] = {"description": "Error", "content": {"application/json": {"schema": ERROR}}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not auth:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def document(path: str, method: str, summary: str, **kwargs: Any) -> None:
    PATHS.setdefault(path, {})[method.lower()] = _op(summary, **kwargs)


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
PROFILE = obj(id=I, role=S, role_label=S, company_id=I, company_name=S)

# --- accounts ---------------------------------------------------------------------------------
document(
    "/api/v1/human-check",
    "get",
    "A human-check challenge to send back with login/registration",
    auth=False,
    tag="accounts",
    errors=(),
    response={
        "oneOf": [
            obj(kind={"const": "builtin"}, question={"type": "string", "description": "e.g. '3 + 4'"}, token=S),
            obj(kind={"const": "hosted"}, site_key=S, script=S),
        ]
    },
)
document(
    "/api/v1/auth/login",
    "post",
    "Log in with user name or e-mail; returns a bearer token",
    auth=False,
    tag="accounts",
    errors=(400, 401, 403, 429),
    body=obj(login=S, password=S, human_token_=S, human_answer_=S, captcha_response_=S, language_=S),
    response=obj(token=S, expires_in=I, profiles={"type": "array", "items": PROFILE}),
)
document(
    "/api/v1/auth/logout", "post", "End this token's session", tag="accounts", errors=(), profile=False, response=OK
)
document(
    "/api/v1/me",
    "get",
    "The signed-in user and the chosen profile",
    tag="accounts",
    errors=(),
    profile=False,
    response=obj(
        user_id=I,
        username=S,
        full_name=S,
        email=S,
        language=S,
        profile={
            "oneOf": [obj(id=I, role=S, company_id=I, company_name=S), {"type": "null"}],
            "description": "null until a profile is chosen",
        },
    ),
)
document(
    "/api/v1/profiles",
    "get",
    "The profiles (role + company) this user holds",
    tag="accounts",
    errors=(),
    profile=False,
    response=obj(profiles={"type": "array", "items": PROFILE}),
)
document(
    "/api/v1/profiles/select",
    "post",
    "Choose the profile this token acts as",
    tag="accounts",
    profile=False,
    errors=(400, 404),
    body=obj(profile_id=I),
    response=obj(profile=obj(id=I, role=S, company_name=S)),
)
document(
    "/api/v1/password",
    "post",
    "Change password (other sessions end)",
    tag="accounts",
    profile=False,
    body=obj(current_password=S, new_password=S, new_password_confirm=S),
    response=OK,
)
document(
    "/api/v1/registration",
    "post",
    "Self-registration; the account awaits approval",
    auth=False,
    tag="accounts",
    status=201,
    body=obj(
        full_name=S,
        username=S,
        email=S,
        email_confirm=S,
        tax_id=S,
        phone=S,
        password=S,
        password_confirm=S,
        human_token_=S,
        human_answer_=S,
    ),
    response=obj(user_id=I, status={"const": "pending"}),
)
document(
    "/api/v1/registration/lookup",
    "post",
    "Existing customer: masked e-mails on file for a tax id",
    auth=False,
    tag="accounts",
    errors=(400, 404),
    body=obj(tax_id=S),
    response=obj(tax_id=S, emails={"type": "array", "items": obj(index=I, masked=S)}),
)
document(
    "/api/v1/registration/phone",
    "post",
    "Existing customer (mobile): send a 4-digit code by SMS",
    auth=False,
    tag="accounts",
    errors=(400, 404, 429),
    body=obj(tax_id=S, email_index=I, phone=S, human_token_=S, human_answer_=S, captcha_response_=S),
    response=obj(request_token=S, expires_in=I),
)
document(
    "/api/v1/registration/complete",
    "post",
    "Existing customer (mobile): code + password → account",
    auth=False,
    tag="accounts",
    status=201,
    body=obj(request_token=S, code=S, full_name=S, username=S, password=S, password_confirm=S),
    response=obj(user_id=I, username=S, email=S, status=S),
)


def spec() -> dict[str, Any]:
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
        "paths": dict(sorted(PATHS.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": obj(error=obj(code=S, message=S, fields={"type": "object", "additionalProperties": S}))
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(spec())


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
