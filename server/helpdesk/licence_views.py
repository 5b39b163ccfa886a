"""Licence pages: serials, the machines on a serial (activate, deactivate, CSV), policies, administration.

Every form post that succeeds answers a redirect to a page that shows its result once (``flash``), so
Back and Refresh never send it again; deactivating a machine is asked for on a page of its own that
says what will happen.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.accounts.registry import get_company
from server.db import Database
from server.flash import redirect_with_flash
from server.forms import ValidationFailed, parse_id
from server.helpdesk import licences, policies
from server.helpdesk.common import LICENCE_ROLES, hd_page, licence_scope, now, today
from server.helpdesk.kiosk_link import deactivate_machine, forget_kiosk_token
from server.helpdesk.paging import ListLinks
from server.helpdesk.settings import HELPDESK_SETTINGS
from server.i18n import N_, Msg
from server.tickets.paging import Keyset
from server.web import DB, Principal, not_found, path_id, require, terminal_now

routes = web.RouteTableDef()


def quota(app: web.Application) -> licences.DeactivationQuota:
    settings = app[HELPDESK_SETTINGS]
    return licences.DeactivationQuota(settings.max_deactivations, settings.deactivation_window_days)


@routes.get("/licences")
async def serial_list(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    scope = licence_scope(principal)
    system = request.query.get("system", "")[:60]
    search = request.query.get("q", "")[:100]
    db = request.app[DB]
    at = Keyset.of(request.query)
    listing = await db.read(licences.serials_page, scope, today(request), system=system, search=search, at=at)
    systems = await db.read(licences.systems_of, scope)
    return hd_page(
        request,
        "helpdesk/licences_list.html",
        {"serials": listing.rows, "listing": listing, "query": ListLinks({"system": system, "q": search})}
        | {"systems": systems, "system": system, "q": search, "all_companies": scope is None},
    )


async def _serial_page(
    request: web.Request, principal: Principal, serial_id: int, status: int = 200, **extra: Any
) -> web.Response:
    db = request.app[DB]
    serial = await db.read(licences.get_serial, licence_scope(principal), serial_id, today(request))
    if serial is None:
        raise not_found()
    show = request.query.get("show", "active")
    machines = await db.read(licences.list_machines, serial_id, active=show != "inactive")
    return hd_page(
        request,
        "helpdesk/licences_serial.html",
        {
            "serial": serial,
            "machines": machines,
            "show": "inactive" if show == "inactive" else "active",
            **await _deactivation_quota(request, serial_id),
            **extra,
        },
        status,
    )


async def _deactivation_quota(request: web.Request, serial_id: int) -> dict[str, Any]:
    """The serial's deactivation quota (``quota``) and how many it has left now (``deactivations_left``)."""
    window = quota(request.app)
    used = await request.app[DB].read(licences.deactivations_in_window, serial_id, now(), window.days)
    return {"quota": window, "deactivations_left": max(0, window.count - len(used))}


@routes.get(r"/licences/{serial_id:\d+}")
async def serial_detail(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    return await _serial_page(request, principal, path_id(request, "serial_id"))


async def activate_machine(
    request: web.Request, principal: Principal, serial_id: int, values: dict[str, Any]
) -> dict[str, Any]:
    """Activate a machine on a serial (checked on the terminal's day); shared by the page and the API."""
    return await request.app[DB].write(
        licences.activate_machine,
        licence_scope(principal),
        serial_id,
        values,
        principal.user_id,
        terminal_now(request.app),
    )


async def set_machine_active(
    request: web.Request, principal: Principal, serial_id: int, machine_id: int, active: bool
) -> dict[str, Any]:
    """Reactivate a machine, or deactivate it (within the quota; a kiosk's token stops working at once)."""
    scope = licence_scope(principal)
    if active:
        return await request.app[DB].write(
            licences.reactivate_machine, scope, serial_id, machine_id, principal.user_id, terminal_now(request.app)
        )
    machine = await request.app[DB].write(
        deactivate_machine, scope, serial_id, machine_id, principal.user_id, now(), quota(request.app)
    )
    forget_kiosk_token(request.app, machine)
    return machine


@routes.post(r"/licences/{serial_id:\d+}/machines")
async def activate(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    serial_id = path_id(request, "serial_id")
    form = await request.post()
    try:
        await activate_machine(request, principal, serial_id, licences.validate_machine(form))
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:128] for k in ("name", "fingerprint")}
        return await _serial_page(request, principal, serial_id, 400, errors=exc.errors, values=echo)
    except licences.LicenceError as exc:
        if exc.code == "not_found":
            raise not_found() from None
        return await _serial_page(request, principal, serial_id, 409, refusal=exc.message)
    raise redirect_with_flash(request, f"/licences/{serial_id}", Msg("The machine was activated."))


#: What each action on a machine says once done.
MACHINE_DONE = {
    "activate": N_("The machine %(name)s was activated."),
    "deactivate": N_("The machine %(name)s was deactivated; its slot is free."),
}


@routes.post(r"/licences/{serial_id:\d+}/machines/{machine_id:\d+}/{action:activate|deactivate}")
async def machine_action(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    serial_id = path_id(request, "serial_id")
    machine_id = path_id(request, "machine_id")
    action = request.match_info["action"]
    try:
        machine = await set_machine_active(request, principal, serial_id, machine_id, action == "activate")
    except licences.LicenceError as exc:
        if exc.code == "not_found":
            raise not_found() from None
        return await _serial_page(request, principal, serial_id, 409, refusal=exc.message)
    raise redirect_with_flash(request, f"/licences/{serial_id}", Msg(MACHINE_DONE[action], {"name": machine["name"]}))


async def _machine(request: web.Request, principal: Principal) -> dict[str, Any]:
    """The machine the URL names, if the principal may see it; else a 404."""
    machine = await request.app[DB].read(
        licences.get_machine, licence_scope(principal), path_id(request, "serial_id"), path_id(request, "machine_id")
    )
    if machine is None:
        raise not_found()
    return machine


@routes.get(r"/licences/{serial_id:\d+}/machines/{machine_id:\d+}")
async def machine_detail(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    return hd_page(request, "helpdesk/licences_machine.html", {"machine": await _machine(request, principal)})


@routes.get(r"/licences/{serial_id:\d+}/machines/{machine_id:\d+}/deactivate")
async def confirm_deactivate(request: web.Request) -> web.Response:
    """What deactivating will do, with the button that does it: nothing is deactivated on one click."""
    principal = require(request, *LICENCE_ROLES)
    machine = await _machine(request, principal)
    context = {"machine": machine, **await _deactivation_quota(request, machine["serial_id"])}
    return hd_page(request, "helpdesk/licences_deactivate.html", context)


async def csv_response(request: web.Request, principal: Principal, serial_id: int) -> web.Response:
    """The serial's machine list as a CSV download; shared with the API."""
    db = request.app[DB]
    serial = await db.read(licences.get_serial, licence_scope(principal), serial_id, today(request))
    if serial is None:
        raise not_found()
    machines = await db.read(licences.list_machines, serial_id)
    filename = f"machines-{serial['serial']}.csv"
    return web.Response(
        body=("\ufeff" + licences.machines_csv(serial, machines)).encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


@routes.get(r"/licences/{serial_id:\d+}/machines.csv")
async def machines_csv(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    return await csv_response(request, principal, path_id(request, "serial_id"))


# --- policies ---------------------------------------------------------------------------------


@routes.get("/policies")
async def policy_list(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    scope = licence_scope(principal)
    system = request.query.get("system", "")[:60]
    search = request.query.get("q", "")[:100]
    db = request.app[DB]
    at = Keyset.of(request.query)
    listing = await db.read(policies.policies_page, scope, today(request), system=system, search=search, at=at)
    systems = await db.read(licences.systems_of, scope)
    return hd_page(
        request,
        "helpdesk/licences_policies.html",
        {"policies": listing.rows, "listing": listing, "query": ListLinks({"system": system, "q": search})}
        | {"systems": systems, "system": system, "q": search, "all_companies": scope is None},
    )


@routes.get(r"/policies/{policy_id:\d+}")
async def policy_detail(request: web.Request) -> web.Response:
    principal = require(request, *LICENCE_ROLES)
    policy = await request.app[DB].read(
        policies.get_policy, licence_scope(principal), path_id(request, "policy_id"), today(request)
    )
    if policy is None:
        raise not_found()
    return hd_page(request, "helpdesk/licences_policy.html", {"policy": policy})


# --- administration ---------------------------------------------------------------------------

SERIAL_FIELDS = (
    "serial_id",
    "company",
    "serial",
    "system",
    "description",
    "valid_until",
    "max_machines",
    "max_open_tickets",
)
POLICY_FIELDS = ("number", "serial", "description", "registered_on", "valid_until")


async def _admin_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    db = request.app[DB]
    search = request.query.get("q", "")[:100]
    listing = await db.read(licences.serials_page, None, today(request), search=search, at=Keyset.of(request.query))
    serial_values = extra.pop("serial_values", None)
    edit_id = parse_id(request.query.get("edit"))
    if serial_values is None:
        # The serial being edited need not be on the page shown.
        editing = await db.read(licences.get_serial, None, edit_id, today(request)) if edit_id else None
        serial_values = await _editing_values(db, editing) if editing else {}
        if editing and editing["suspended"]:
            serial_values["suspended"] = "1"
    return hd_page(
        request,
        "helpdesk/licences_admin.html",
        {
            "serials": listing.rows,
            "listing": listing,
            "query": ListLinks({"q": search}),
            "serial_values": serial_values,
            "serial_errors": {},
            "policy_values": {},
            "policy_errors": {},
            "q": search,
            **extra,
        },
        status,
    )


async def _editing_values(db: Database, editing: dict[str, Any]) -> dict[str, str]:
    """The serial form filled in with a saved serial; its company shown by tax id, as the form takes it."""
    company = await db.read(get_company, editing["company_id"])
    kept = {k: str(editing[k]) for k in SERIAL_FIELDS if k not in ("serial_id", "company")}
    return kept | {"serial_id": str(editing["id"]), "company": company["tax_id"] if company else ""}


@routes.get("/admin/licences")
async def admin_licences(request: web.Request) -> web.Response:
    require(request, "admin")
    return await _admin_page(request)


@routes.post("/admin/licences/serials")
async def admin_save_serial(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    form = await request.post()
    try:
        values = licences.validate_serial(form, tax_id_field="company")
        await request.app[DB].write(licences.save_serial, values, principal.user_id, now())
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:200] for k in (*SERIAL_FIELDS, "suspended")}
        return await _admin_page(request, 400, serial_errors=exc.errors, serial_values=echo)
    raise redirect_with_flash(request, "/admin/licences", Msg("Serial saved."))


@routes.get("/admin/licences/serial-choices")
async def serial_choices(request: web.Request) -> web.Response:
    """The policy form's type-ahead: serials whose number, system, description or company contains ``?q=``."""
    require(request, "admin")
    search = " ".join(request.query.get("q", "").split())[:100]
    if not search:
        return web.json_response({"choices": []}, headers={"Cache-Control": "no-store"})
    found = await request.app[DB].read(licences.serials_page, None, today(request), search=search, limit=10)
    choices = [
        {"value": s["serial"], "label": f"{s['serial']} — {s['system']} ({s['company_name']})"} for s in found.rows
    ]
    return web.json_response({"choices": choices}, headers={"Cache-Control": "no-store"})


@routes.post("/admin/licences/policies")
async def admin_save_policy(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    form = await request.post()
    try:
        values = policies.validate_policy(form, serial_field="serial")
        await request.app[DB].write(policies.save_policy, values, principal.user_id, now())
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:200] for k in POLICY_FIELDS}
        return await _admin_page(request, 400, policy_errors=exc.errors, policy_values=echo)
    raise redirect_with_flash(request, "/admin/licences", Msg("Policy saved."))
