"""OpenAPI entries for the helpdesk, licence, policy and company-user API."""

from __future__ import annotations

from typing import Any

from server.accounts.list_query import paging_params
from server.openapi import NULLABLE_I, NULLABLE_S, ApiDocs, B, I, S, obj, path_param, query_param

ARRAY = {"type": "array", "items": {"type": "object"}}
FILE = obj(id=I, name=S, content_type=S, size=I, url=S)
TICKET = obj(
    id=I,
    number={"type": "string", "description": "S_<counter>_<ddmmyyyyHHMMSS>, unique"},
    system=S,
    serial=S,
    policy_id=I,
    policy_number=S,
    area=S,
    area_label=S,
    subject=S,
    status={"enum": ["open", "waiting_customer", "closed", "cancelled"]},
    status_label=S,
    email=S,
    phone=S,
    contact_hours=S,
    description=S,
    created_at=S,
    created_ago={"type": "string", "description": "relative, in the reader's language ('20 hours ago')"},
    updated_at=S,
    closed_at=NULLABLE_S,
    agent=NULLABLE_S,
    rating=NULLABLE_I,
    rating_comment=NULLABLE_S,
    company_={"type": "string", "description": "helpdesk staff only"},
    attachments_={"type": "array", "items": FILE},
    replies_=ARRAY,
)
TICKET_BODY = obj(
    policy_id=I,
    area=S,
    subject=S,
    email=S,
    email_confirm=S,
    phone=S,
    phone_confirm=S,
    contact_hours=S,
    description=S,
)
REPLY_BODY = obj(body=S)
SERIAL = obj(
    id=I,
    company_id=I,
    company_name=S,
    serial=S,
    system=S,
    description=S,
    valid_until={"type": "string", "format": "date"},
    days_left=I,
    status={"enum": ["valid", "expired", "suspended"]},
    max_machines=I,
    max_open_tickets=I,
    machines=obj(total=I, active=I, available=I, registered=I),
    policy_count=I,
)
SERIAL_BODY = obj(
    company_id=I,
    serial_={"type": "string", "description": "generated when left out"},
    system=S,
    description=S,
    valid_until={"type": "string", "format": "date"},
    max_machines=I,
    max_open_tickets=I,
    suspended_=B,
)
MACHINE = obj(
    id=I,
    serial_id=I,
    name=S,
    fingerprint=S,
    active=B,
    activated_at=S,
    deactivated_at=NULLABLE_S,
    last_seen_at=NULLABLE_S,
    kiosk_id=NULLABLE_I,
)
COMPANY_USER = {"id": I, "username": S, "email": S, "roles": {"type": "array", "items": S}}
POLICY = obj(
    id=I,
    number=S,
    system=S,
    description=S,
    registered_on=S,
    valid_until=S,
    days_left=I,
    serial_id=I,
    serial=S,
    serial_policy_count=I,
)


def _query(*names: str) -> list[dict[str, Any]]:
    return [query_param(n) for n in names]


def _multipart(docs: ApiDocs, path: str, method: str, body: dict[str, Any]) -> None:
    """The same fields as the JSON body, or multipart with files under ``attachments``."""
    schema = {
        **body,
        "properties": {
            **body["properties"],
            "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    docs.paths[path][method]["requestBody"]["content"]["multipart/form-data"] = {"schema": schema}


def _download(docs: ApiDocs, path: str, content_type: str) -> None:
    docs.paths[path]["get"]["responses"]["200"] = {
        "description": "A file download (Content-Disposition: attachment)",
        "content": {content_type: {"schema": {"type": "string", "format": "binary"}}},
    }


def document_routes(docs: ApiDocs) -> None:
    """Document the helpdesk, licence and company-user API."""
    _document_tickets(docs, "helpdesk")
    _document_replies(docs, "helpdesk")
    _document_licences(docs, "licences")
    _document_serial_machines(docs, "licences")
    _document_machines(docs, "licences")
    _document_users(docs, "company users")


def _document_tickets(docs: ApiDocs, tag: str) -> None:
    """Service tickets: areas, list, open, detail."""
    docs.add(
        "/api/v1/helpdesk/areas",
        "get",
        "The areas a service ticket can be addressed to",
        tag=tag,
        errors=(),
        response=obj(areas={"type": "array", "items": obj(code=S, label=S)}),
    )
    docs.add(
        "/api/v1/helpdesk/tickets",
        "get",
        "Customers: the company's service tickets; helpdesk staff: the queue (?area, ?status=active|open|…). "
        "Newest first, one page at a time: send next_after back as ?after= (null on the last page)",
        tag=tag,
        errors=(403,),
        params=[*_query("area", "status", "q"), *paging_params("tickets")],
        response=obj(tickets={"type": "array", "items": TICKET}, next_after=NULLABLE_I),
    )
    docs.add(
        "/api/v1/helpdesk/tickets",
        "post",
        "Open a service ticket against a policy (JSON, or multipart with attachments). 409 codes: "
        "serial_ticket_limit, open_ticket_exists (with existing_ticket), policy_expired, serial_suspended",
        tag=tag,
        status=201,
        errors=(400, 403, 404, 409),
        body=TICKET_BODY,
        response=TICKET,
    )
    _multipart(docs, "/api/v1/helpdesk/tickets", "post", TICKET_BODY)
    docs.add(
        "/api/v1/helpdesk/tickets/{ticket_id}",
        "get",
        "A service ticket with its thread of replies and attachments",
        tag=tag,
        errors=(403, 404),
        params=[path_param("ticket_id")],
        response=TICKET,
    )
    docs.add(
        "/api/v1/helpdesk/tickets/{ticket_id}/replies",
        "post",
        "Reply (customer or agent; JSON, or multipart with attachments); an agent's reply is e-mailed",
        tag=tag,
        status=201,
        errors=(400, 403, 404, 409),
        params=[path_param("ticket_id")],
        body=REPLY_BODY,
        response=TICKET,
    )
    _multipart(docs, "/api/v1/helpdesk/tickets/{ticket_id}/replies", "post", REPLY_BODY)


def _document_replies(docs: ApiDocs, tag: str) -> None:
    """A ticket's thread, its status changes, rating and attachments."""
    for action, summary in (
        ("assign", "Helpdesk staff: assign the ticket to me"),
        ("close", "Helpdesk staff: close the ticket as solved (the customer is e-mailed)"),
        ("cancel", "Helpdesk staff: cancel the ticket"),
    ):
        docs.add(
            f"/api/v1/helpdesk/tickets/{{ticket_id}}/{action}",
            "post",
            summary,
            tag=tag,
            errors=(403, 404, 409),
            params=[path_param("ticket_id")],
            response=TICKET,
        )
    docs.add(
        "/api/v1/helpdesk/tickets/{ticket_id}/rating",
        "post",
        "Rate a closed ticket once: 1 to 5 and a comment (409 not_closed, already_rated)",
        tag=tag,
        errors=(400, 403, 404, 409),
        params=[path_param("ticket_id")],
        body=obj(rating=I, comment_=S),
        response=TICKET,
    )
    docs.add(
        "/api/v1/helpdesk/attachments/{attachment_id}",
        "get",
        "Download an attachment of a ticket the caller may see",
        tag=tag,
        errors=(403, 404),
        params=[path_param("attachment_id")],
    )
    _download(docs, "/api/v1/helpdesk/attachments/{attachment_id}", "application/octet-stream")


def _document_licences(docs: ApiDocs, tag: str) -> None:
    """Licence serials and their detail."""
    docs.add(
        "/api/v1/licences",
        "get",
        "The company's licence serials (?system, ?q); the administrator sees every company's. "
        "Newest first, one page at a time: send next_after back as ?after= (null on the last page)",
        tag=tag,
        errors=(403,),
        params=[*_query("system", "q"), *paging_params("serials")],
        response=obj(serials={"type": "array", "items": SERIAL}, next_after=NULLABLE_I),
    )
    docs.add(
        "/api/v1/licences/systems",
        "get",
        "The systems the company holds serials of, A to Z: the choices of the ?system filter of "
        "/api/v1/licences and /api/v1/policies (the administrator gets every company's)",
        tag=tag,
        errors=(403,),
        response=obj(systems={"type": "array", "items": S}),
    )
    docs.add(
        "/api/v1/licences",
        "post",
        "Administrator: create a serial",
        tag=tag,
        status=201,
        errors=(400, 403),
        body=SERIAL_BODY,
        response=SERIAL,
    )
    docs.add(
        "/api/v1/licences/{serial_id}",
        "get",
        "A serial with its machine counts (total, active, available)",
        tag=tag,
        errors=(403, 404),
        params=[path_param("serial_id")],
        response=SERIAL,
    )
    docs.add(
        "/api/v1/licences/{serial_id}",
        "put",
        "Administrator: update a serial (validity, limits, suspension)",
        tag=tag,
        errors=(400, 403, 404),
        params=[path_param("serial_id")],
        body=SERIAL_BODY,
        response=SERIAL,
    )


def _document_serial_machines(docs: ApiDocs, tag: str) -> None:
    """A serial's machines: list, activate, CSV export."""
    docs.add(
        "/api/v1/licences/{serial_id}/machines",
        "get",
        "The machines of a serial (?status=all|active|inactive)",
        tag=tag,
        errors=(403, 404),
        params=[path_param("serial_id"), *_query("status")],
        response=obj(serial=SERIAL, machines={"type": "array", "items": MACHINE}),
    )
    docs.add(
        "/api/v1/licences/{serial_id}/machines",
        "post",
        "Activate a machine (name, fingerprint) on a serial; 409 machine_limit, serial_expired, "
        "serial_suspended, already_active",
        tag=tag,
        status=201,
        errors=(400, 403, 404, 409),
        params=[path_param("serial_id")],
        body=obj(name=S, fingerprint=S),
        response=MACHINE,
    )
    docs.add(
        "/api/v1/licences/{serial_id}/machines/export",
        "get",
        "The serial's machine list as a CSV download",
        tag=tag,
        errors=(403, 404),
        params=[path_param("serial_id")],
    )
    _download(docs, "/api/v1/licences/{serial_id}/machines/export", "text/csv")


def _document_machines(docs: ApiDocs, tag: str) -> None:
    """Machines on a serial, their export, activation and policies."""
    docs.add(
        "/api/v1/licences/{serial_id}/machines/{machine_id}",
        "get",
        "One machine's detail",
        tag=tag,
        errors=(403, 404),
        params=[path_param("serial_id"), path_param("machine_id")],
        response=MACHINE,
    )
    for action, summary in (
        ("activate", "Activate an inactive machine again (counts against the maximum)"),
        (
            "deactivate",
            "Deactivate a machine: its slot frees at once (a gate kiosk's token is revoked); limited "
            "per serial and period (409 deactivation_quota)",
        ),
    ):
        docs.add(
            f"/api/v1/licences/{{serial_id}}/machines/{{machine_id}}/{action}",
            "post",
            summary,
            tag=tag,
            errors=(403, 404, 409),
            params=[path_param("serial_id"), path_param("machine_id")],
            response=MACHINE,
        )
    docs.add(
        "/api/v1/policies",
        "get",
        "The company's support policies (?system, ?q, ?current=1), with the count per serial. "
        "Newest first, one page at a time: send next_after back as ?after= (null on the last page)",
        tag=tag,
        errors=(403,),
        params=[*_query("system", "q", "current"), *paging_params("policies")],
        response=obj(policies={"type": "array", "items": POLICY}, next_after=NULLABLE_I),
    )
    docs.add(
        "/api/v1/policies",
        "post",
        "Administrator: register a policy on a serial",
        tag=tag,
        status=201,
        errors=(400, 403),
        body=obj(number=S, serial_id=I, description=S, registered_on=S, valid_until=S),
        response=POLICY,
    )
    docs.add(
        "/api/v1/policies/{policy_id}",
        "get",
        "A policy's detail",
        tag=tag,
        errors=(403, 404),
        params=[path_param("policy_id")],
        response=POLICY,
    )


def _document_users(docs: ApiDocs, tag: str) -> None:
    """A customer administrator's company users."""
    docs.add(
        "/api/v1/company/users",
        "get",
        "Customer administrator: the company's users and their profiles",
        tag=tag,
        errors=(403,),
        response=obj(users={"type": "array", "items": obj(**COMPANY_USER, full_name=S, status=S)}),
    )
    docs.add(
        "/api/v1/company/users",
        "post",
        "Customer administrator: add a user (profiles customer/customer_admin); a set-password link is e-mailed",
        tag=tag,
        status=201,
        errors=(400, 403),
        body=obj(full_name=S, username=S, email=S, email_confirm=S, phone_=S, roles={"type": "array", "items": S}),
        response=obj(**COMPANY_USER),
    )
    docs.add(
        "/api/v1/company/users/{user_id}",
        "delete",
        "Customer administrator: remove a user from the company",
        tag=tag,
        errors=(403, 404, 409),
        params=[path_param("user_id")],
        response=obj(removed=I),
    )
