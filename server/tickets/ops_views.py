"""Operations' catalogue pages: itineraries and services listed (search, status, keyset pages), added,
imported, edited and closed; edits and closing are asked for on a page that says what will happen."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from aiohttp import web

from server.csv_import import import_upload
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed
from server.i18n import N_, Msg
from server.tickets import catalogue as cat
from server.tickets import service as svc
from server.tickets.staff_pages import Action, Field, ListQuery, Perform, action_routes, writer
from server.timefmt import timestamp
from server.web import CONFIG, DB, form_body, require

routes = web.RouteTableDef()
OPERATIONS = ("operations", "admin")
ITINERARIES = "/ops/itineraries"
SERVICES = "/ops/services"
STATUSES = ("open", "closed")

#: The list after a successful post says what happened (``saved`` and ``imported`` by kind).
SAVED = {"itineraries": N_("Itinerary saved."), "services": N_("Service saved.")}
IMPORTED = {"itineraries": N_("Imported: %(n)s itineraries."), "services": N_("Imported: %(n)s services.")}
ITINERARY_FIELDS = ("vessel", "voyage", "eta", "etd", "valid_from", "valid_until", "berth")


async def _list_page(request: web.Request, kind: str, status: int = 200, **extra: Any) -> web.Response:
    query = ListQuery.of(request.query, STATUSES)
    lister = cat.itineraries_page if kind == "itineraries" else cat.services_page
    listing = await request.app[DB].read(lister, search=query.search, status=query.status, at=query.at)
    context = {"listing": listing, "query": query, "values": {}, "errors": {}}
    return render_with_flash(request, f"tickets/ops_{kind}.html", {**context, **extra}, status)


async def _add(
    request: web.Request, kind: str, validate: Callable[[Any], dict[str, Any]], save: Callable[..., Any]
) -> web.Response:
    """Validate every field and save in one transaction; errors re-show the list with each at its field."""
    principal = require(request, *OPERATIONS)
    form = await form_body(request)
    try:
        await request.app[DB].write(save, validate(form), principal.user_id, now=_now())
    except ValidationFailed as exc:
        values = {k: str(form.get(k, ""))[:120] for k in form if k != "csrf_token"}
        return await _list_page(request, kind, 400, errors=exc.errors, values=values)
    raise redirect_with_flash(request, f"/ops/{kind}", Msg(SAVED[kind]))


async def _import(
    request: web.Request, kind: str, parse: Callable[[str], list[dict[str, Any]]], save: Callable[..., int]
) -> web.Response:
    """Read the upload, import all-or-nothing; a bad file re-shows the list with its bad lines."""
    principal = require(request, *OPERATIONS)
    count = await import_upload(request, request.app[DB], parse, functools.partial(save, now=_now()), principal.user_id)
    if isinstance(count, Msg):
        return await _list_page(request, kind, 400, import_error=count)
    raise redirect_with_flash(request, f"/ops/{kind}", Msg(IMPORTED[kind], {"n": count}))


def _now() -> datetime:
    return datetime.now(UTC)


@routes.get(ITINERARIES)
async def itineraries(request: web.Request) -> web.Response:
    require(request, *OPERATIONS)
    return await _list_page(request, "itineraries")


@routes.post(ITINERARIES)
async def itinerary_add(request: web.Request) -> web.Response:
    validate = functools.partial(svc.validate_itinerary, zone=request.app[CONFIG].zone)
    return await _add(request, "itineraries", validate, svc.save_itinerary)


@routes.post(f"{ITINERARIES}/import")
async def itinerary_import(request: web.Request) -> web.Response:
    parse = functools.partial(svc.parse_itineraries_csv, zone=request.app[CONFIG].zone)
    return await _import(request, "itineraries", parse, svc.save_itineraries)


@routes.get(SERVICES)
async def services(request: web.Request) -> web.Response:
    require(request, *OPERATIONS)
    return await _list_page(request, "services")


@routes.post(SERVICES)
async def service_add(request: web.Request) -> web.Response:
    return await _add(request, "services", svc.validate_service, svc.save_service)


@routes.post(f"{SERVICES}/import")
async def service_import(request: web.Request) -> web.Response:
    return await _import(request, "services", svc.parse_services_csv, svc.save_services)


# --- edit and close -----------------------------------------------------------------------------


def local_input(value: str, zone: tzinfo) -> str:
    """A stored UTC time as a ``datetime-local`` field shows it: the terminal's local time, to the minute."""
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _itinerary_defaults(row: dict[str, Any], request: web.Request) -> dict[str, str]:
    zone = request.app[CONFIG].zone
    times = {k: local_input(row[k], zone) for k in ("eta", "etd", "valid_from", "valid_until")}
    return {"vessel": row["vessel"], "voyage": row["voyage"], "berth": row["berth"], **times}


def _window(row: dict[str, Any], request: web.Request) -> dict[str, str]:
    until = timestamp(row["valid_until"], request.app[CONFIG].zone)
    return {"name": f"{row['vessel']} {row['voyage']}", "until": until}


EDIT_ITINERARY = Action(
    roles=OPERATIONS,
    path_param="itinerary_id",
    load=svc.get_itinerary,
    title=N_("Edit itinerary"),
    explain=lambda row, request: [
        Msg("Itinerary %(name)s.", _window(row, request)),
        Msg("Tickets already generated follow the new gate window; the kiosks learn it at their next sync."),
    ],
    submit=N_("Save"),
    back=ITINERARIES,
    fields=(
        Field("vessel", N_("Vessel")),
        Field("voyage", N_("Voyage")),
        Field("eta", N_("Arrival (ETA)"), "datetime-local"),
        Field("etd", N_("Departure (ETD)"), "datetime-local"),
        Field("valid_from", N_("Gate window from"), "datetime-local"),
        Field("valid_until", N_("Gate window until"), "datetime-local"),
        Field("berth", N_("Berth"), required=False),
    ),
    defaults=_itinerary_defaults,
)
CLOSE_ITINERARY = Action(
    roles=OPERATIONS,
    path_param="itinerary_id",
    load=svc.get_itinerary,
    title=N_("Close itinerary"),
    explain=lambda row, request: [
        Msg("Itinerary %(name)s.", _window(row, request)),
        Msg(
            "Once closed, no new tickets can be generated for it. Tickets already generated keep working at "
            "the gate within their window (until %(until)s).",
            _window(row, request),
        ),
    ],
    submit=N_("Close itinerary"),
    back=ITINERARIES,
)
EDIT_SERVICE = Action(
    roles=OPERATIONS,
    path_param="service_id",
    load=cat.get_service,
    title=N_("Edit service"),
    explain=lambda row, request: [Msg("Service %(code)s. Tickets already generated show the new names.", row)],
    submit=N_("Save"),
    back=SERVICES,
    fields=(Field("code", N_("Code")), Field("name_es", N_("Name (Spanish)")), Field("name_en", N_("Name (English)"))),
    defaults=lambda row, request: {k: row[k] for k in ("code", "name_es", "name_en")},
)
CLOSE_SERVICE = Action(
    roles=OPERATIONS,
    path_param="service_id",
    load=cat.get_service,
    title=N_("Close service"),
    explain=lambda row, request: [
        Msg("Service %(code)s.", row),
        Msg("Once closed, it can no longer be chosen for new tickets. Tickets that have it keep it."),
    ],
    submit=N_("Close service"),
    back=SERVICES,
)


def _edit_itinerary(request: web.Request) -> Perform:
    return writer(request, cat.edit_itinerary, functools.partial(svc.validate_itinerary, zone=request.app[CONFIG].zone))


action_routes(
    routes, r"/ops/itineraries/{itinerary_id:\d+}", EDIT_ITINERARY, _edit_itinerary, Msg(SAVED["itineraries"])
)
action_routes(
    routes,
    r"/ops/itineraries/{itinerary_id:\d+}/close",
    CLOSE_ITINERARY,
    lambda request: writer(request, cat.close_itinerary),
    Msg("Itinerary closed: no new tickets for it."),
)
action_routes(
    routes,
    r"/ops/services/{service_id:\d+}",
    EDIT_SERVICE,
    lambda request: writer(request, cat.edit_service, svc.validate_service),
    Msg(SAVED["services"]),
)
action_routes(
    routes,
    r"/ops/services/{service_id:\d+}/close",
    CLOSE_SERVICE,
    lambda request: writer(request, cat.close_service),
    Msg("Service closed: no new tickets with it."),
)
