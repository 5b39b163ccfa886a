"""The OpenAPI document: valid 3.1, and in step with the routes the app really serves.

Written generically over ``app.router.routes()`` so every ``/api/v1`` route added later is covered
without touching this file.
"""

from __future__ import annotations

import re

import pytest

from server.app import create_app

API_PREFIX = "/api/v1/"
METHODS = {"get", "post", "put", "patch", "delete"}
# The document does not describe itself; every other /api/v1 route must be in it.
SELF = "/api/v1/openapi.json"


def served_operations(app) -> set[tuple[str, str]]:
    """(path template, method) of every /api/v1 route the app registers, e.g. ("/api/v1/x/{id}", "get")."""
    found = set()
    for route in app.router.routes():
        method = route.method.lower()
        canonical = route.resource.canonical if route.resource is not None else ""
        if canonical.startswith(API_PREFIX) and method in METHODS and canonical != SELF:
            found.add((canonical, method))
    return found


def documented_operations(spec: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in spec["paths"].items() for method in ops if method in METHODS}


@pytest.fixture
async def spec(client) -> dict:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.json()


async def test_document_is_valid_openapi_3_1(spec):
    import openapi_spec_validator as validator

    assert spec["openapi"].startswith("3.1")
    validator.OpenAPIV31SpecValidator(spec).validate()


async def test_every_served_api_route_is_documented_with_its_method(client, spec):
    served = served_operations(client.app)
    assert ("/api/v1/auth/login", "post") in served  # the walk itself works
    missing = sorted(served - documented_operations(spec))
    assert not missing, f"served but not in the OpenAPI document: {missing}"


async def test_every_documented_operation_is_served(client, spec):
    stale = sorted(documented_operations(spec) - served_operations(client.app))
    assert not stale, f"documented but not served: {stale}"


def test_routes_are_found_on_a_fresh_app_too(config):
    """The check does not depend on a running server: the router of a new app has the same routes."""
    assert served_operations(create_app(config)) >= {("/api/v1/me", "get"), ("/api/v1/registration", "post")}


async def test_every_operation_documents_its_errors_and_summary(spec):
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, method in documented_operations(spec):
        op = spec["paths"][path][method]
        assert op.get("summary"), (path, method)
        assert any(code.startswith("2") or code == "101" for code in op["responses"]), (path, method)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == error_ref, (path, method, code)
        for name in re.findall(r"{(\w+)}", path):
            params = op.get("parameters", []) + spec["paths"][path].get("parameters", [])
            assert any(p["name"] == name and p["in"] == "path" for p in params), (path, method, name)


async def test_operations_that_need_a_token_answer_401_json_without_one(client, spec):
    """What the document says about authentication is what the server does."""
    for path, method in sorted(documented_operations(spec)):
        op = spec["paths"][path][method]
        if op.get("security", spec.get("security")) == []:
            continue
        url = re.sub(r"{\w+}", "1", path)
        resp = await client.request(method.upper(), url, json={})
        assert resp.status == 401, (method, path, resp.status)
        assert resp.content_type == "application/json", (method, path)
        error = (await resp.json())["error"]
        assert error["code"] and error["message"], (method, path)
        assert "401" in op["responses"], f"{method} {path} answers 401 but does not document it"
