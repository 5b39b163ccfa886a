"""OpenAPI entries for the kiosk protocol (a third-party kiosk should need nothing else) and for the
gate supervisor's API (kiosks, the scan log, conflicts)."""

from __future__ import annotations

from gate_core.reasons import DECISION_REASONS
from server.gate.kiosk_list import KIOSK_STATUSES
from server.gate.redeem import CONFLICT_KINDS
from server.gate.supervision import CONFLICT_STATUSES
from server.gate.sync import TICKET_COLUMNS
from server.openapi import NULLABLE_I, NULLABLE_S, ApiDocs, B, I, S, obj, path_param, query_param

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
    """Document the kiosk protocol (enrolment and identity, sync, redeems and uploads, the live channel)
    and the supervisor's API (kiosks, the scan log, conflicts)."""
    _document_enrolment(docs)
    _document_sync(docs)
    _document_redeems(docs)
    _document_live(docs)
    _document_kiosk_list(docs)
    _document_kiosk(docs)
    _document_scans(docs)
    _document_conflicts(docs)


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
            epoch={
                "type": "string",
                "description": "the database's sync epoch: cursors count within it. A restore from a backup "
                "gives a new one; a kiosk whose stored epoch differs drops its cached tickets (not its "
                "unsent scans) and syncs again from cursor 0",
            },
            server_time=TIME,
            **LOOKUPS,
        ),
    )


def _document_redeems(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/gate/redeem",
        "post",
        "Online redeem: decide a scan and, if accepted, use the ticket atomically. Idempotent by scan_id "
        "(a retry returns the first verdict). `code` is a full code (`PG1` and base32, or its decimal form "
        "`PGD` and 181 digits, which ticket QRs carry) or a 20-digit short code; a code "
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
        '`{"type":"hello","seq","epoch"}`, then `{"type":"tickets","seq","columns","tickets",...lookups}` within a '
        'second of each use, print or delete, and `{"type":"ping","server_time"}`. A kiosk may send '
        '`{"pending_uploads": n}`. Closed with code 4003 when the kiosk is revoked. ' + KIOSK_AUTH,
        tag=TAG,
        errors=(400, 403),
    )
    # The answer is the protocol switch, not a JSON body; a plain GET without the upgrade gets 400.
    live = docs.paths["/api/v1/gate/live"]["get"]["responses"]
    del live["200"]
    live["101"] = {"description": "Switching Protocols: the WebSocket opens"}


# --- the gate supervisor's API ----------------------------------------------------------------

STAFF_TAG = "gate supervision"
AUTH = " A portal token acting through a gate supervisor's or an admin's profile."
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

KIOSK = obj(
    id=I,
    name=S,
    gate=S,
    status={"enum": ["pending", "active", "revoked"]},
    allowed_itineraries={"type": "array", "items": I, "description": "empty: every itinerary"},
    fingerprint=S,
    agent_version=S,
    created_at=TIME,
    enrolled_at=NULLABLE_TIME,
    revoked_at=NULLABLE_TIME,
    enrol_expires_at={**NULLABLE_TIME, "description": "while it awaits enrolment: when its code expires"},
    online={**B, "description": "enrolled and heard from within a minute, or holding its live channel"},
    connected={**B, "description": "holding its live channel now"},
    last_seen_at=NULLABLE_TIME,
    sync_lag={**NULLABLE_I, "description": "ticket changes it has not pulled yet (null before enrolment)"},
    pending_uploads={**I, "description": "scans waiting in its outbox, as it last said"},
    storage_fault={**B, "description": "it last said it cannot save scans (disk full or failing)"},
)
ENROLMENT = obj(
    kiosk=KIOSK,
    enrol_code={"type": "string", "description": "one-time, shown only in this answer"},
    enrol_expires_at=TIME,
)
SCAN = obj(
    id=I,
    scan_id=S,
    kiosk_id=I,
    kiosk_name=NULLABLE_S,
    ticket_id=NULLABLE_I,
    company_id=NULLABLE_I,
    company_name=NULLABLE_S,
    code=S,
    scanned_at={**TIME, "description": "the kiosk's clock"},
    received_at={**TIME, "description": "the server's clock"},
    mode={"enum": ["online", "offline"]},
    accepted=B,
    reason=S,
    reason_text={**S, "description": "the reason in the reader's language"},
    local_reason={**NULLABLE_S, "description": "what the kiosk decided, when it decided offline"},
    local_reason_text=S,
)
CONFLICT = obj(
    id=I,
    ticket_id=I,
    kind={"enum": list(CONFLICT_KINDS)},
    short_code=S,
    company_name=S,
    created_at=TIME,
    first_scan_id={**S, "description": "the scan that used the ticket first ('' when there was none)"},
    first_kiosk=NULLABLE_S,
    first_at=NULLABLE_TIME,
    second_scan_id=S,
    second_kiosk=NULLABLE_S,
    second_at=NULLABLE_TIME,
    second_reason={**NULLABLE_S, "description": "the server's reason for the scan the kiosk let through"},
    second_reason_text=S,
    resolved_at=NULLABLE_TIME,
    resolved_by=NULLABLE_S,
    resolution=S,
)


LIMIT = query_param("limit", {**I, "minimum": 1, "maximum": 200}, "page size (default 50)")
BEFORE = query_param("before", {**I, "minimum": 1}, "the previous page's next_before: rows with a lower id")


def _document_kiosk_list(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/kiosks",
        "get",
        "Kiosks with their health, not revoked first, by name; repeat with `after` = `next` for the next page." + AUTH,
        tag=STAFF_TAG,
        params=[
            query_param("status", {"enum": ["", *KIOSK_STATUSES]}, "current = not revoked; empty: every kiosk"),
            query_param("q", S, "part of the name or the gate"),
            query_param("after", S, "the previous page's `next`"),
            LIMIT,
        ],
        response=obj(kiosks={"type": "array", "items": KIOSK}, next=NULLABLE_S),
    )
    docs.add(
        "/api/v1/kiosks",
        "post",
        "Create a kiosk awaiting enrolment; the answer holds its one-time enrolment code." + AUTH,
        tag=STAFF_TAG,
        status=201,
        body=obj(
            name={**S, "minLength": 1, "maxLength": 60, "description": "unique"},
            gate_={**S, "maxLength": 60},
            itineraries_={"type": "array", "items": I, "maxItems": 500, "description": "none: all"},
        ),
        response=ENROLMENT,
    )


def _document_kiosk(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/kiosks/{kiosk_id}",
        "get",
        "A kiosk with its health." + AUTH,
        tag=STAFF_TAG,
        errors=(404,),
        params=[path_param("kiosk_id")],
        response=KIOSK,
    )
    docs.add(
        "/api/v1/kiosks/{kiosk_id}/enrol-code",
        "post",
        "A new one-time enrolment code for a kiosk that has not enrolled (the previous one stops working); "
        "409 `not_pending` once it has." + AUTH,
        tag=STAFF_TAG,
        errors=(404, 409),
        params=[path_param("kiosk_id")],
        response=ENROLMENT,
    )
    docs.add(
        "/api/v1/kiosks/{kiosk_id}/revoke",
        "post",
        "Revoke a kiosk for good: its next request is refused (403 `revoked_kiosk`), its live channel "
        "closes, its place on the gate licence is freed. Revoking a revoked kiosk changes nothing." + AUTH,
        tag=STAFF_TAG,
        errors=(404,),
        params=[path_param("kiosk_id")],
        response=KIOSK,
    )


def _document_scans(docs: ApiDocs) -> None:
    day = {"type": "string", "format": "date"}
    docs.add(
        "/api/v1/scans",
        "get",
        "The scan log, newest first, every scan accepted or refused; repeat with `before` = `next_before` "
        "for older ones." + AUTH,
        tag=STAFF_TAG,
        params=[
            query_param("kiosk", {**I, "minimum": 1}, "one kiosk's scans"),
            query_param("accepted", {"enum": ["", "1", "0", "true", "false"]}, "accepted or refused only"),
            query_param("reason", REASONS, "one reason code"),
            query_param("from", day, "first day, in the terminal's time zone"),
            query_param("to", day, "last day (included), in the terminal's time zone"),
            query_param(
                "code",
                S,
                "a full code in either form or a 20-digit code (its ticket's scans), or the start of an unknown code",
            ),
            BEFORE,
            LIMIT,
        ],
        response=obj(scans={"type": "array", "items": SCAN}, next_before=NULLABLE_I),
    )


def _document_conflicts(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/conflicts",
        "get",
        "Conflicts (a ticket a kiosk let through on its own word against the server's record), newest "
        "first; repeat with `before` = `next_before` for older ones." + AUTH,
        tag=STAFF_TAG,
        params=[
            query_param("status", {"enum": ["", *CONFLICT_STATUSES]}, "open (the default), resolved or all"),
            query_param("kind", {"enum": ["", *CONFLICT_KINDS]}, "one kind"),
            BEFORE,
            LIMIT,
        ],
        response=obj(conflicts={"type": "array", "items": CONFLICT}, next_before=NULLABLE_I),
    )
    docs.add(
        "/api/v1/conflicts/{conflict_id}",
        "get",
        "A conflict with both scans." + AUTH,
        tag=STAFF_TAG,
        errors=(404,),
        params=[path_param("conflict_id")],
        response=CONFLICT,
    )
    docs.add(
        "/api/v1/conflicts/{conflict_id}/resolve",
        "post",
        "Resolve a conflict with a note saying what was done; 409 `already_resolved` the second time." + AUTH,
        tag=STAFF_TAG,
        errors=(400, 404, 409),
        params=[path_param("conflict_id")],
        body=obj(note={**S, "minLength": 1, "maxLength": 1000}),
        response=CONFLICT,
    )
