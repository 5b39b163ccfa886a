"""Licence and policy JSON API (``/api/v1/licences/...``, ``/api/v1/policies/...``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.helpdesk import licences, policies
from server.helpdesk.common import LICENCE_ROLES, licence_error, licence_scope, now, today
from server.helpdesk.licence_views import activate_machine, csv_response, set_machine_active
from server.helpdesk.paging import api_paging, page_json
from server.web import DB, json_body, not_found, path_id, require

routes = web.RouteTableDef()


def serial_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "company_id": row["company_id"],
        "company_name": row["company_name"],
        "serial": row["serial"],
        "system": row["system"],
        "description": row["description"],
        "valid_until": row["valid_until"],
        "days_left": row["days_left"],
        "status": row["status"],
        "max_machines": row["max_machines"],
        "max_open_tickets": row["max_open_tickets"],
        "machines": {
            "total": row["max_machines"],
            "active": row["active_machines"],
            "available": row["available"],
            "registered": row["total_machines"],
        },
        "policy_count": row["policy_count"],
    }


def machine_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "serial_id": row["serial_id"],
        "name": row["name"],
        "fingerprint": row["fingerprint"],
        "active": bool(row["active"]),
        "activated_at": row["activated_at"],
        "deactivated_at": row["deactivated_at"],
        "last_seen_at": row["last_seen_at"],
        "kiosk_id": row["kiosk_id"],
    }


def policy_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": row["number"],
        "system": row["system"],
        "description": row["description"],
        "registered_on": row["registered_on"],
        "valid_until": row["valid_until"],
        "days_left": row["days_left"],
        "serial_id": row["serial_id"],
        "serial": row["serial"],
        "serial_policy_count": row["serial_policy_count"],
    }


@routes.get("/api/v1/licences")
async def api_serials(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    page = await request.app[DB].read(
        licences.serials_page,
        licence_scope(principal),
        today(request),
        system=request.query.get("system", "")[:60],
        search=request.query.get("q", "")[:100],
        **api_paging(request),
    )
    return page_json(page, "serials", serial_json)


@routes.get("/api/v1/licences/systems")
async def api_systems(request: web.Request) -> web.Response:
    """The systems the company holds serials of: the choices of the licence and policy filters."""
    principal = require(request, *LICENCE_ROLES)
    return web.json_response({"systems": await request.app[DB].read(licences.systems_of, licence_scope(principal))})


@routes.post("/api/v1/licences")
async def api_create_serial(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    values = licences.validate_serial(await json_body(request))
    values["serial_id"] = None
    serial_id = await request.app[DB].write(licences.save_serial, values, principal.user_id, now())
    row = await request.app[DB].read(licences.get_serial, None, serial_id, today(request))
    assert row is not None  # just saved; serials are never removed
    return web.json_response(serial_json(row), status=201)


async def _serial(request: web.Request, serial_id: int) -> dict[str, Any]:
    principal = require(request, *LICENCE_ROLES)
    row = await request.app[DB].read(licences.get_serial, licence_scope(principal), serial_id, today(request))
    if row is None:
        raise not_found()
    return row


@routes.get(r"/api/v1/licences/{serial_id:\d+}")
async def api_serial(request: web.Request) -> web.Response:
    return web.json_response(serial_json(await _serial(request, path_id(request, "serial_id"))))


@routes.put(r"/api/v1/licences/{serial_id:\d+}")
async def api_update_serial(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    serial_id = path_id(request, "serial_id")
    await _serial(request, serial_id)
    body = await json_body(request)
    values = licences.validate_serial({**body, "serial_id": serial_id})
    await request.app[DB].write(licences.save_serial, values, principal.user_id, now())
    return web.json_response(serial_json(await _serial(request, serial_id)))


@routes.get(r"/api/v1/licences/{serial_id:\d+}/machines")
async def api_machines(request: web.Request) -> web.Response:
    serial = await _serial(request, path_id(request, "serial_id"))
    show = request.query.get("status", "all")
    active = {"active": True, "inactive": False}.get(show)
    rows = await request.app[DB].read(licences.list_machines, serial["id"], active=active)
    return web.json_response({"serial": serial_json(serial), "machines": [machine_json(r) for r in rows]})


@routes.get(r"/api/v1/licences/{serial_id:\d+}/machines/export")
async def api_machines_csv(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    return await csv_response(request, principal, path_id(request, "serial_id"))


@routes.post(r"/api/v1/licences/{serial_id:\d+}/machines")
async def api_activate(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    serial_id = path_id(request, "serial_id")
    values = licences.validate_machine(await json_body(request))
    try:
        row = await activate_machine(request, principal, serial_id, values)
    except licences.LicenceError as exc:
        raise licence_error(exc) from None
    return web.json_response(machine_json(row), status=201)


@routes.get(r"/api/v1/licences/{serial_id:\d+}/machines/{machine_id:\d+}")
async def api_machine(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    row = await request.app[DB].read(
        licences.get_machine, licence_scope(principal), path_id(request, "serial_id"), path_id(request, "machine_id")
    )
    if row is None:
        raise not_found()
    return web.json_response(machine_json(row))


@routes.post(r"/api/v1/licences/{serial_id:\d+}/machines/{machine_id:\d+}/activate")
@routes.post(r"/api/v1/licences/{serial_id:\d+}/machines/{machine_id:\d+}/deactivate")
async def api_machine_action(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    serial_id = path_id(request, "serial_id")
    machine_id = path_id(request, "machine_id")
    try:
        row = await set_machine_active(
            request, principal, serial_id, machine_id, active=not request.path.endswith("/deactivate")
        )
    except licences.LicenceError as exc:
        raise licence_error(exc) from None
    return web.json_response(machine_json(row))


# --- policies ---------------------------------------------------------------------------------


@routes.get("/api/v1/policies")
async def api_policies(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    page = await request.app[DB].read(
        policies.policies_page,
        licence_scope(principal),
        today(request),
        system=request.query.get("system", "")[:60],
        search=request.query.get("q", "")[:100],
        current_only=request.query.get("current") in ("1", "true"),
        **api_paging(request),
    )
    return page_json(page, "policies", policy_json)


@routes.post("/api/v1/policies")
async def api_create_policy(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    values = policies.validate_policy(await json_body(request))
    policy_id = await request.app[DB].write(policies.save_policy, values, principal.user_id, now())
    row = await request.app[DB].read(policies.get_policy, None, policy_id, today(request))
    assert row is not None  # just saved; policies are never removed
    return web.json_response(policy_json(row), status=201)


@routes.get(r"/api/v1/policies/{policy_id:\d+}")
async def api_policy(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    row = await request.app[DB].read(
        policies.get_policy, licence_scope(principal), path_id(request, "policy_id"), today(request)
    )
    if row is None:
        raise not_found()
    return web.json_response(policy_json(row))
