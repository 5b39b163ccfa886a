"""OpenAPI entries for the kiosk protocol; a third-party kiosk should need nothing else."""

from __future__ import annotations

from gate_core.reasons import DECISION_REASONS
from server.gate.redeem import CONFLICT_KINDS
from server.gate.sync import TICKET_COLUMNS
from server.openapi import NULLABLE_I, NULLABLE_S, ApiDocs, B, I, S, obj

TAG = "gate"
REASONS = {"type": "string", "enum": [reason.value for reason in DECISION_REASONS]}
KIOSK_AUTH = (
    "Authenticated by the kiosk's bearer token (`Authorization: Bearer pgk_…`). A revoked kiosk gets 403 "
    "with code `revoked_kiosk`. Any request may report the scans waiting in the kiosk's outbox with "
    "`X-Pending-Uploads: <n>` (or the query parameter `pending_uploads`), and whether it can save scans "
    "with `X-Kiosk-Storage: ok` or `fault` (its disk full or failing; shown in the supervisor's kiosk list)."
)
TIME = {"type": "string", "format": "date-time"}

VERDICT = obj(
    accepted=B,
    reason=REASONS,
    ticket_id=NULLABLE_I,
    itinerary_id=NULLABLE_I,
    ticket={
        "type": ["object", "null"],
        "description": "ticket_id, itinerary_id, printed, deleted, company_name, itinerary_label, services",
    },
    prior_use={"type": ["object", "null"], "description": "used_at, kiosk_name, scan_id (for already_used)"},
    text_es=S,
    text_en=S,
    scan_id=S,
    server_time=TIME,
)
LOOKUPS = {
    "companies": {"type": "object", "description": "company id → name"},
    "generations": {"type": "object", "description": "generation id → [service id, …]"},
    "services": {"type": "object", "description": "service id → [name_es, name_en]"},
    "itineraries": {"type": "object", "description": "itinerary id → [label, valid_from, valid_until, active]"},
    "kiosks": {"type": "object", "description": "kiosk id → name (for used_by)"},
}
TICKET_ROWS = {
    "type": "array",
    "items": {"type": "array"},
    "description": "One array per ticket, in the order of `columns`: "
    + ", ".join(TICKET_COLUMNS)
    + ". printed/deleted are 0/1; used_at is ISO-8601 or null; used_by is a kiosk id or null; seq is the "
    "number of the ticket's latest change (a ticket comes once per sync, and again only when it changes "
    "again: keep the row with the highest seq).",
}


def document_routes(docs: ApiDocs) -> None:
    """Document the kiosk protocol: enrolment and identity, sync, redeems and uploads, the live channel."""
    _document_enrolment(docs)
    _document_sync(docs)
    _document_redeems(docs)
    _document_live(docs)


def _document_enrolment(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/gate/enrol",
        "post",
        "Enrol a kiosk with the one-time code a supervisor created; returns its bearer token",
        auth=False,
        tag=TAG,
        status=201,
        errors=(400, 403),
        body=obj(enrol_code=S, fingerprint_=S, agent_version_=S),
        response=obj(kiosk_id=I, name=S, gate=S, token=S, server_time=TIME),
    )
    docs.add(
        "/api/v1/gate/time",
        "get",
        "Server time, for kiosks to follow the server clock. " + KIOSK_AUTH,
        tag=TAG,
        errors=(403,),
        response=obj(server_time=TIME, epoch_ms=I),
    )
    docs.add(
        "/api/v1/gate/keys",
        "get",
        "Public Ed25519 keys that verify ticket codes (key id → base64 raw key). " + KIOSK_AUTH,
        tag=TAG,
        errors=(403,),
        response=obj(keys={"type": "object", "additionalProperties": S}, server_time=TIME),
    )
    docs.add(
        "/api/v1/gate/me",
        "get",
        "This kiosk's name, gate and allowed itineraries (null = all). " + KIOSK_AUTH,
        tag=TAG,
        errors=(403,),
        response=obj(kiosk_id=I, name=S, gate=S, allowed_itineraries={"type": ["array", "null"]}, server_time=TIME),
    )


def _document_sync(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/gate/sync",
        "get",
        "Delta sync: tickets changed since `cursor` (ordered by change), with lookups and keys; "
        "repeat with the returned cursor while has_more. Send Accept-Encoding: gzip. " + KIOSK_AUTH,
        tag=TAG,
        errors=(400, 403),
        params=[
            {"name": "cursor", "in": "query", "schema": I, "description": "0 for a first full sync"},
            {"name": "limit", "in": "query", "schema": I, "description": "page size, 1..100000 (default 50000)"},
        ],
        response=obj(
            columns={"type": "array", "items": S},
            tickets=TICKET_ROWS,
            keys={"type": "object", "additionalProperties": S},
            cursor=I,
            has_more=B,
            server_time=TIME,
            **LOOKUPS,
        ),
    )


def _document_redeems(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/gate/redeem",
        "post",
        "Online redeem: decide a scan and, if accepted, use the ticket atomically. Idempotent by scan_id "
        "(a retry returns the first verdict). `code` is a full PG1 code or a 20-digit short code; a code "
        "that is not valid still gets a verdict (malformed, forged, unknown…). `scan_id` is unique per scan; "
        "ids that sort by time (as the Portgate agent makes them: 12 hex digits of Unix milliseconds, then "
        "random) keep the server's scan index compact. " + KIOSK_AUTH,
        tag=TAG,
        errors=(400, 403, 409),
        body=obj(scan_id=S, code=S, scanned_at=TIME),
        response=VERDICT,
    )
    docs.add(
        "/api/v1/gate/scans",
        "post",
        "Upload scans decided offline (at most 500), each recorded exactly once by scan_id. An accepted "
        "scan of an unused ticket records its use; of a used or deleted ticket it records a conflict. "
        "outcome is use_recorded, conflict, logged or rejected (scan id of another kiosk). " + KIOSK_AUTH,
        tag=TAG,
        errors=(400, 403),
        body=obj(
            scans={
                "type": "array",
                "maxItems": 500,
                "items": obj(scan_id=S, code=S, scanned_at=TIME, accepted=B, reason=REASONS),
            },
            pending_uploads_=I,
        ),
        response=obj(
            results={
                "type": "array",
                "items": obj(
                    scan_id=S,
                    outcome={"type": "string", "enum": ["use_recorded", "conflict", "logged", "rejected"]},
                    reason=NULLABLE_S,
                    conflict={"type": ["string", "null"], "enum": [*CONFLICT_KINDS, None]},
                ),
            },
            server_time=TIME,
        ),
    )


def _document_live(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/gate/live",
        "get",
        "WebSocket live channel (the token may also be `?token=`). The server sends "
        '`{"type":"hello","seq"}`, then `{"type":"tickets","seq","columns","tickets",...lookups}` within a '
        'second of each use, print or delete, and `{"type":"ping","server_time"}`. A kiosk may send '
        '`{"pending_uploads": n}`. Closed with code 4003 when the kiosk is revoked. ' + KIOSK_AUTH,
        tag=TAG,
        errors=(400, 403),
    )
    # The answer is the protocol switch, not a JSON body; a plain GET without the upgrade gets 400.
    live = docs.paths["/api/v1/gate/live"]["get"]["responses"]
    del live["200"]
    live["101"] = {"description": "Switching Protocols: the WebSocket opens"}
