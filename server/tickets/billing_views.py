"""Billing's purchase pages: the list (search, status, keyset pages), record, import, and the payment
confirmation, void and correction, each asked for on a page that says what will happen."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from server.csv_import import import_upload
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed
from server.i18n import N_, Msg
from server.tickets import purchases as pur
from server.tickets.staff_pages import Action, Field, ListQuery, Perform, action_routes, writer
from server.web import DB, form_body, require, terminal_now

routes = web.RouteTableDef()
BILLING = ("billing_clerk", "admin")
LIST = "/billing/purchases"
STATUSES = ("pending", "confirmed", "voided")


async def _list_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    query = ListQuery.of(request.query, STATUSES)
    listing = await request.app[DB].read(pur.purchases_page, search=query.search, status=query.status, at=query.at)
    context = {"listing": listing, "query": query, "values": {}, "errors": {}}
    return render_with_flash(request, "tickets/billing_purchases.html", {**context, **extra}, status)


@routes.get(LIST)
async def purchases(request: web.Request) -> web.Response:
    require(request, *BILLING)
    return await _list_page(request)


@routes.post(LIST)
async def purchase_record(request: web.Request) -> web.Response:
    principal = require(request, *BILLING)
    form = await form_body(request)
    try:
        values = pur.validate_new_purchase(form)
        await request.app[DB].write(pur.record_new_purchase, values, principal.user_id, now=terminal_now(request.app))
    except ValidationFailed as exc:
        values = {k: str(form.get(k, ""))[:120] for k in ("company", "quantity", "reference")}
        return await _list_page(request, 400, errors=exc.errors, values=values)
    raise redirect_with_flash(request, LIST, Msg("Purchase recorded; confirm it when the payment arrives."))


@routes.post(f"{LIST}/import")
async def purchase_import(request: web.Request) -> web.Response:
    principal = require(request, *BILLING)
    save = functools.partial(pur.save_purchases, now=terminal_now(request.app))
    count = await import_upload(request, request.app[DB], pur.parse_purchases_csv, save, principal.user_id)
    if isinstance(count, Msg):
        return await _list_page(request, 400, import_error=count)
    raise redirect_with_flash(request, LIST, Msg("Imported: %(n)s purchases (awaiting payment).", {"n": count}))


@routes.get(f"{LIST}/companies")
async def company_picker(request: web.Request) -> web.Response:
    """The purchase form's type-ahead: registry companies whose name or tax id starts with ``?q=``."""
    require(request, *BILLING)
    search = " ".join(request.query.get("q", "").split())[:100]
    rows = await request.app[DB].read(pur.company_choices, search)
    return web.json_response({"companies": rows}, headers={"Cache-Control": "no-store"})


# --- confirm, void, correct -------------------------------------------------------------------


def _who(row: dict[str, Any]) -> dict[str, Any]:
    return {"reference": row["reference"], "company": row["company_name"], "n": row["quantity"]}


CONFIRM = Action(
    roles=BILLING,
    path_param="purchase_id",
    load=pur.get_purchase,
    title=N_("Confirm payment"),
    explain=lambda row, request: [
        Msg("Purchase %(reference)s of %(company)s: %(n)s tickets.", _who(row)),
        Msg("Once confirmed, the %(n)s tickets join the company's balance and its users can generate them.", _who(row)),
        Msg("Type the bank's reference and the date of the payment, as the bank statement shows them."),
    ],
    submit=N_("Confirm payment"),
    back=LIST,
    fields=(Field("bank_reference", N_("Bank reference")), Field("paid_on", N_("Payment date"), "date")),
    defaults=lambda row, request: {"paid_on": terminal_now(request.app).date().isoformat()},
)
VOID = Action(
    roles=BILLING,
    path_param="purchase_id",
    load=pur.get_purchase,
    title=N_("Void purchase"),
    explain=lambda row, request: [
        Msg("Purchase %(reference)s of %(company)s: %(n)s tickets.", _who(row)),
        Msg(
            "Voiding it takes its %(n)s tickets out of the company's balance if the payment was confirmed; "
            "it is refused if the company has already generated them. It cannot be undone.",
            _who(row),
        ),
    ],
    submit=N_("Void purchase"),
    back=LIST,
    fields=(Field("reason", N_("Reason")),),
)
CORRECT = Action(
    roles=BILLING,
    path_param="purchase_id",
    load=pur.get_purchase,
    title=N_("Correct purchase"),
    explain=lambda row, request: [
        Msg("Purchase %(reference)s of %(company)s: %(n)s tickets.", _who(row)),
        Msg(
            "The new quantity replaces the old one (both are kept with the reason). If the payment was "
            "confirmed, the company's balance changes by the difference, never below what it has generated."
        ),
    ],
    submit=N_("Save the correction"),
    back=LIST,
    fields=(Field("quantity", N_("Quantity"), "number"), Field("reason", N_("Reason"))),
    defaults=lambda row, request: {"quantity": str(row["quantity"])},
)


def _payment(request: web.Request) -> Perform:
    return writer(
        request, pur.confirm_payment, functools.partial(pur.validate_payment, today=terminal_now(request.app).date())
    )


action_routes(
    routes,
    r"/billing/purchases/{purchase_id:\d+}/confirm",
    CONFIRM,
    _payment,
    Msg("Payment confirmed; the tickets are in the company's balance."),
)
action_routes(
    routes,
    r"/billing/purchases/{purchase_id:\d+}/void",
    VOID,
    lambda request: writer(request, pur.void_purchase, pur.validate_reason),
    Msg("Purchase voided."),
)
action_routes(
    routes,
    r"/billing/purchases/{purchase_id:\d+}/correct",
    CORRECT,
    lambda request: writer(request, pur.correct_purchase, pur.validate_correction),
    Msg("Purchase corrected."),
)
