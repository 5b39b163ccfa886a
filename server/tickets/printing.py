"""Printing gate tickets: several into one PDF, the masked code that matches the paper, and the PDF
rendered away from the event loop.

The rules per ticket are :func:`server.tickets.service.print_ticket`'s: a used or deleted ticket cannot be
printed, printing marks it printed, reprints are allowed. A request for several is all or nothing: if
any ticket cannot be printed, none is marked and the answer names each one that blocked it.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from server import forms
from server.db import lock_for_update, scalar
from server.forms import FieldErrors
from server.i18n import Msg
from server.renderer_process import start_helper_process
from server.tickets import KEYS, tickets_changed
from server.tickets import service as svc
from server.tickets.pdf import PER_SHEET, PrintableTicket, render_tickets_pdf
from server.timefmt import date_time
from server.web import CONFIG, DB, ApiError, Principal

T = TypeVar("T")

#: The PDF process's CPU priority below the server's: a 500-ticket PDF is seconds of CPU, and on a box with
#: few cores the redeems (which a truck waits for) go first; a download may take longer on a busy box.
PDF_NICENESS = 10
#: The most tickets one PDF holds ("print all not printed" takes the first ones; print again for the rest).
MAX_PRINT = 1000


class PdfRenderer:
    """One PDF-rendering process per server process, started on the first print: a server that never
    prints (a gate-only node, the parent of several workers) starts no process at all."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    @property
    def pool(self) -> Executor:
        if self._pool is None:
            # "spawn": a fork of this process (its database and writer threads) is not safe to run code in.
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_helper_process,
                initargs=(os.getpid(), PDF_NICENESS),
            )
        return self._pool

    @property
    def started(self) -> bool:
        return self._pool is not None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


PDF_RENDERER: web.AppKey[PdfRenderer] = web.AppKey("pdf_renderer", PdfRenderer)


async def pdf_renderer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's PDF renderer, stopped with the app."""
    renderer = app[PDF_RENDERER] = PdfRenderer()
    yield
    await asyncio.to_thread(renderer.shutdown)


def mask_short_code(short_code: str) -> str:
    """The 20-digit code as the list shows it before printing: its last four digits where the print has
    them (``••••• ••••• ••••• •6789`` for ``12345 67890 12345 56789``), so a row and a paper can be matched."""
    hidden = "•" * (len(short_code) - 4) + short_code[-4:]
    return " ".join(hidden[i : i + 5] for i in range(0, len(hidden), 5))


def display_code(ticket: Mapping[str, Any]) -> str:
    """What a list shows in a ticket's code column: the printed code, or the same code masked."""
    printed = ticket["printed_at"] is not None
    return " ".join(_groups(ticket["short_code"])) if printed else mask_short_code(ticket["short_code"])


def _groups(digits: str) -> list[str]:
    return [digits[i : i + 5] for i in range(0, len(digits), 5)]


def ticket_error(exc: svc.TicketError) -> ApiError:
    return ApiError(404 if exc.code == "not_found" else 409, exc.code, exc.message)


# --- the print request ------------------------------------------------------------------------


def validate_print(ticket_ids: Sequence[Any], per_sheet: Any) -> tuple[list[int], int]:
    """The tickets (each once, by number) and the tickets per sheet of a print request."""
    errors = FieldErrors()
    ids = forms.id_choices(list(ticket_ids), "ticket_ids", errors, Msg("Choose tickets from the list."))
    if not ids and "ticket_ids" not in errors:
        errors.add("ticket_ids", Msg("Choose at least one ticket to print."))
    elif len(ids) > MAX_PRINT:
        errors.add("ticket_ids", Msg("At most %(n)s tickets in one PDF.", {"n": MAX_PRINT}))
    sheet = forms.integer({"per_sheet": per_sheet}, "per_sheet", errors, minimum=1, maximum=6, required=False)
    if sheet is not None and sheet not in PER_SHEET:
        errors.add("per_sheet", Msg("Choose 1, 4 or 6 tickets per sheet."))
    errors.raise_if_any()
    return ids, sheet or 1


def print_tickets(
    db: svc.Db,
    company_id: int,
    ticket_ids: list[int],
    user_id: int | None = None,
    keys: svc.KeyRing | None = None,
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """Mark several tickets printed in one transaction; all or nothing (see the module)."""
    found = {t["id"]: t for t in _tickets_of(db, company_id, ticket_ids)}
    missing = [i for i in ticket_ids if i not in found or found[i]["deleted_at"]]
    if missing:
        message = Msg("These tickets do not exist or were deleted: %(ids)s. Nothing was printed.", _named(missing))
        raise svc.TicketError("not_found", message)
    used = [i for i in ticket_ids if found[i]["used_at"]]
    if used:
        message = Msg(
            "These tickets were already used at the gate and can no longer be printed: %(ids)s. Nothing was printed.",
            _named(used),
        )
        raise svc.TicketError("used", message)
    return [svc.mark_printed(db, found[i], user_id, keys, now=now) for i in ticket_ids]


def _tickets_of(db: svc.Db, company_id: int, ticket_ids: list[int]) -> list[dict[str, Any]]:
    """The company's tickets among ``ticket_ids``, with their generation's transaction and services."""
    rows: list[dict[str, Any]] = []
    ordered = sorted(ticket_ids)  # locked in id order, as redeems lock them: no deadlock with a redeem batch
    for start in range(0, len(ordered), 500):  # well under SQLite's limit of bound parameters
        chunk = ordered[start : start + 500]
        lock_for_update(
            db,
            f"SELECT id FROM tickets WHERE company_id = ? AND id IN ({','.join('?' * len(chunk))}) ORDER BY id",
            (company_id, *chunk),
        )
        rows += db.query(
            "SELECT t.*, g.transaction_no, g.services FROM tickets t JOIN generations g ON g.id = t.generation_id "
            f"WHERE t.company_id = ? AND t.id IN ({','.join('?' * len(chunk))})",
            (company_id, *chunk),
        )
    return rows


def _named(ids: list[int]) -> dict[str, str]:
    return {"ids": ", ".join(f"#{i}" for i in ids)}


def unprinted_ids(db: svc.Db, company_id: int, itinerary_id: int) -> list[int]:
    """The first :data:`MAX_PRINT` live tickets of the itinerary not printed yet (never used: a use needs a print)."""
    rows = svc.tickets_page(db, company_id, itinerary_id, status="not_printed", limit=MAX_PRINT)
    return [row["id"] for row in rows]


# --- the PDF ----------------------------------------------------------------------------------


async def printable_tickets(
    app: web.Application, principal: Principal, tickets: list[dict[str, Any]], lang: str
) -> list[PrintableTicket]:
    """What the PDF shows of each ticket just marked printed (as :func:`print_tickets` returns them)."""
    db = app[DB]
    zone = app[CONFIG].zone
    tax_id = await db.read(scalar, "SELECT tax_id FROM companies WHERE id = ?", (principal.company_id,))
    # Per itinerary and per service list, not per ticket: formatting three times for each of 1000 tickets
    # kept the event loop (and every redeem waiting on it) busy for ~0.1 s.
    itineraries: dict[int, dict[str, str]] = {}
    services: dict[str, list[str]] = {}
    printable = []
    for ticket in tickets:
        itinerary = itineraries.get(ticket["itinerary_id"])
        if itinerary is None:
            found = await db.read(svc.get_itinerary, ticket["itinerary_id"])
            assert found is not None  # itineraries are deactivated, never removed
            itinerary = itineraries[ticket["itinerary_id"]] = {
                "vessel": found["vessel"],
                "voyage": found["voyage"],
                **{name: date_time(found[name], lang, zone) for name in ("eta", "valid_from", "valid_until")},
            }
        if ticket["services"] not in services:
            services[ticket["services"]] = await db.read(svc.service_names, json.loads(ticket["services"]), lang)
        printable.append(
            PrintableTicket(
                ticket_id=ticket["id"],
                code=ticket["code"],
                short_code=ticket["short_code"],
                company=principal.company_name or "",
                tax_id=tax_id,
                services=services[ticket["services"]],
                transaction_no=ticket["transaction_no"],
                **itinerary,
            )
        )
    return printable


async def render_pdf(app: web.Application, tickets: list[PrintableTicket], lang: str, per_sheet: int) -> bytes:
    """The PDF, rendered by the app's PDF process (a thread where the app has none): never on the event loop."""
    loop = asyncio.get_running_loop()
    renderer = app.get(PDF_RENDERER)
    executor = renderer.pool if renderer is not None else None
    return await loop.run_in_executor(executor, render_tickets_pdf, tickets, lang, per_sheet)


async def print_as_pdf(
    request: web.Request, principal: Principal, ticket_ids: list[int], per_sheet: int, lang: str
) -> web.Response:
    """Mark the tickets printed and answer them as one PDF; shared by the page and the API."""
    app = request.app
    try:
        tickets = await app[DB].write(
            print_tickets, principal.company_id, ticket_ids, principal.user_id, app[KEYS], now=datetime.now(UTC)
        )
    except svc.TicketError as exc:
        raise ticket_error(exc) from None
    await _announce_first_prints(app, tickets)
    return await pdf_response(request, principal, tickets, per_sheet, lang)


async def write_ticket(request: web.Request, principal: Principal, service: Callable[..., T], ticket_id: int) -> T:
    """``service(db, company, ticket_id, user, keys, now=…)`` on one of the principal's company's tickets, in a
    write; a refusal (used, deleted, not theirs) is the API's error for it."""
    try:
        return await request.app[DB].write(
            service, principal.company_id, ticket_id, principal.user_id, request.app[KEYS], now=datetime.now(UTC)
        )
    except svc.TicketError as exc:
        raise ticket_error(exc) from None


async def print_one(request: web.Request, principal: Principal, ticket_id: int) -> dict[str, Any]:
    """Mark one ticket printed (the page, the API, the phone); a first print is pushed to the kiosks."""
    ticket = await write_ticket(request, principal, svc.print_ticket, ticket_id)
    await _announce_first_prints(request.app, [ticket])
    return ticket


async def _announce_first_prints(app: web.Application, tickets: list[dict[str, Any]]) -> None:
    first_prints = [t["id"] for t in tickets if t["first_print"]]
    if first_prints:
        await tickets_changed(app, first_prints)


async def pdf_response(
    request: web.Request, principal: Principal, tickets: list[dict[str, Any]], per_sheet: int, lang: str
) -> web.Response:
    """Answer the marked ``tickets`` as a PDF download."""
    printable = await printable_tickets(request.app, principal, tickets, lang)
    pdf = await render_pdf(request.app, printable, lang, per_sheet)
    ids = [t["id"] for t in tickets]
    name = f"ticket-{ids[0]}.pdf" if len(ids) == 1 else f"tickets-{ids[0]}-{ids[-1]}.pdf"
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
