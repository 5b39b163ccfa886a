"""The OpenAPI description of the tickets area's staff API (``server.tickets.staff_api``)."""

from __future__ import annotations

from typing import Any

from server.openapi import NULLABLE_I, NULLABLE_S, ApiDocs, B, I, S, obj, path_param, query_param

PURCHASE = obj(
    id=I,
    company_id=I,
    company_name=S,
    tax_id=S,
    quantity=I,
    reference=S,
    status={"enum": ["pending", "confirmed", "voided"]},
    recorded_at=S,
    bank_reference=NULLABLE_S,
    paid_on={**NULLABLE_S, "description": "the payment's date at the bank, YYYY-MM-DD"},
    confirmed_by={**NULLABLE_S, "description": "user name of who confirmed the payment"},
    confirmed_at=NULLABLE_S,
    voided_at=NULLABLE_S,
    void_reason=NULLABLE_S,
)
ITINERARY = obj(id=I, vessel=S, voyage=S, eta=S, etd=S, valid_from=S, valid_until=S, berth=S, active=B)
SERVICE = obj(id=I, code=S, name_es=S, name_en=S, active=B)
ITINERARY_BODY = obj(
    vessel=S,
    voyage=S,
    eta={**S, "description": "ISO 8601; without an offset, the terminal's local time"},
    etd=S,
    valid_from=S,
    valid_until=S,
    berth_=S,
)
SERVICE_BODY = obj(code=S, name_es=S, name_en=S)
PAGE_LINKS = {
    "next_after": {**NULLABLE_I, "description": "send as ?after= for the next (older) page; null on the last"},
    "prev_before": {**NULLABLE_I, "description": "send as ?before= for the previous (newer) page; null on the first"},
}


def _query(*names: str) -> list[dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {"q": S, "after": I, "before": I, "limit": {**I, "minimum": 1, "maximum": 200}}
    return [query_param(n, schemas.get(n, S)) for n in names]


def _path(name: str) -> list[dict[str, Any]]:
    return [path_param(name)]


def _list_params(statuses: list[str]) -> list[dict[str, Any]]:
    status = {"name": "status", "in": "query", "required": False, "schema": {"enum": statuses}}
    return [*_query("q", "after", "before", "limit"), status]


def document_routes(docs: ApiDocs) -> None:
    """Document billing's purchases and operations' itineraries and services."""
    _document_purchases(docs)
    _document_purchase_changes(docs)
    _document_catalogue(docs, "itineraries", ITINERARY, ITINERARY_BODY, "itinerary_id")
    _document_catalogue(docs, "services", SERVICE, SERVICE_BODY, "service_id")


def _document_purchases(docs: ApiDocs) -> None:
    base = "/api/v1/billing/purchases"
    docs.add(
        base,
        "get",
        "Purchases, newest first; q matches the start of the company's name or tax id or of the reference",
        tag="billing",
        errors=(400,),
        params=_list_params(["pending", "confirmed", "voided"]),
        response=obj(purchases={"type": "array", "items": PURCHASE}, **PAGE_LINKS),
    )
    docs.add(
        base,
        "post",
        "Record a purchase (awaiting payment) for a company of the billing registry, named by tax id",
        tag="billing",
        status=201,
        errors=(400,),
        body=obj(tax_id=S, quantity=I, reference=S),
        response=PURCHASE,
    )
    docs.add(
        f"{base}/import",
        "post",
        "Record every row of a CSV (tax_id,quantity,reference) or none; a bad row is named by line and field",
        tag="billing",
        status=201,
        errors=(400,),
        body=obj(csv=S),
        response=obj(imported=I),
    )
    docs.add(
        f"{base}/{{purchase_id}}",
        "get",
        "One purchase",
        tag="billing",
        errors=(404,),
        params=_path("purchase_id"),
        response=PURCHASE,
    )


def _document_purchase_changes(docs: ApiDocs) -> None:
    base = "/api/v1/billing/purchases/{purchase_id}"
    changes = (
        ("confirm", "Confirm the payment: the quantity joins the company's balance", obj(bank_reference=S, paid_on=S)),
        ("void", "Void a purchase, with a reason; never below the tickets generated", obj(reason=S)),
        (
            "correct",
            "Correct the quantity, with a reason; never below the tickets generated",
            obj(quantity=I, reason=S),
        ),
    )
    for action, summary, body in changes:
        docs.add(
            f"{base}/{action}",
            "post",
            summary,
            tag="billing",
            errors=(400, 404, 409),
            params=_path("purchase_id"),
            body=body,
            response=PURCHASE,
        )


def _document_catalogue(docs: ApiDocs, kind: str, item: dict, body: dict, id_name: str) -> None:
    base = f"/api/v1/ops/{kind}"
    docs.add(
        base,
        "get",
        f"All {kind}, newest first, open and closed; q matches the start of their names",
        tag="operations",
        errors=(400,),
        params=_list_params(["open", "closed"]),
        response=obj(**{kind: {"type": "array", "items": item}}, **PAGE_LINKS),
    )
    docs.add(
        base,
        "post",
        f"Add one of the {kind} (or update the one with the same key)",
        tag="operations",
        status=201,
        errors=(400,),
        body=body,
        response=item,
    )
    docs.add(
        f"{base}/{{{id_name}}}",
        "put",
        f"Edit one of the {kind}",
        tag="operations",
        errors=(400, 404),
        params=_path(id_name),
        body=body,
        response=item,
    )
    docs.add(
        f"{base}/{{{id_name}}}/close",
        "post",
        f"Close one of the {kind}: no new tickets; tickets already generated keep working at the gate",
        tag="operations",
        errors=(404, 409),
        params=_path(id_name),
        response=item,
    )
