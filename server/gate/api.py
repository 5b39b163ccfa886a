"""The kiosk protocol, ``/api/v1/gate/...``: enrol, sync, redeem, upload offline scans, live channel.

Every route but enrolment authenticates a kiosk by its bearer token (``KIOSKS``); portal users'
tokens are not kiosk tokens and get 401 here. Handlers parse and validate, call one service
function, and answer JSON; bad input is a 4xx with a stable error code, never a 500.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from gate_core.clock import utc_iso
from gate_core.codes import ParsedCode, normalize_short_code
from gate_core.decision import Verdict
from gate_core.reasons import Reason, reason_text
from server import forms, metrics
from server.forms import FieldErrors, ValidationFailed
from server.gate import kiosks, redeem, sync, uploads
from server.gate.batching import CODE_CHECKS, REDEEMS
from server.gate.kiosks import KIOSKS, EnrolError, KioskState
from server.gate.live import LIVE
from server.i18n import Msg
from server.tickets import KEYS
from server.tickets.service import KeyRing
from server.web import DB, ApiError, int_param, json_body, lang_of, terminal_now

routes = web.RouteTableDef()

SCAN_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
MAX_BATCH = 500
#: Offline scans recorded per write transaction (about 100 µs each).
OFFLINE_WRITE_CHUNK = 50
MAX_CODE_INPUT = 4096  # far above any real code; keeps a broken scanner's garbage bounded
SYNC_GZIP_LEVEL = 1
GZIP_MIN_BYTES = 1024


def _now() -> datetime:
    return datetime.now(UTC)


async def _kiosk(request: web.Request) -> KioskState:
    return await request.app[KIOSKS].authenticate(request)


# --- field parsing -----------------------------------------------------------------------------


def _scan_id(data: dict[str, Any], errors: FieldErrors, name: str = "scan_id") -> str:
    value = data.get("scan_id")
    if not isinstance(value, str) or not SCAN_ID_RE.match(value):
        errors.add(name, Msg("A scan id of 8 to 64 letters, digits, dashes or underscores is required."))
        return ""
    return value


def _scanned_at(data: dict[str, Any], errors: FieldErrors, name: str = "scanned_at") -> datetime | None:
    value = data.get("scanned_at")
    if not isinstance(value, str) or not value or len(value) > 40:
        errors.add(name, Msg("The scan time is required, as ISO-8601 with a UTC offset."))
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.add(name, Msg("The scan time is required, as ISO-8601 with a UTC offset."))
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.add(name, Msg("The scan time needs a UTC offset, for example 2026-11-24T08:00:00-05:00."))
        return None
    try:
        moment.astimezone(UTC)  # 0001-01-01T00:00+01:00 has no UTC time: it would fail when stored
    except OverflowError:
        errors.add(name, Msg("The scan time is required, as ISO-8601 with a UTC offset."))
        return None
    return moment


def _code(data: dict[str, Any], errors: FieldErrors, name: str = "code") -> str:
    # Cleaned as every text field is: a scanner's control characters or a lone surrogate (which
    # the database cannot store) never reach the scan log.
    value = forms.clean_text(data.get("code")) if isinstance(data.get("code"), str) else ""
    if not value:
        errors.add(name, Msg("The scanned code is required."))
        return ""
    return value[:MAX_CODE_INPUT]


async def _read_codes(request: web.Request, texts: list[str]) -> list[tuple[str, ParsedCode | None]]:
    """``redeem.read_code`` for each text; signatures are checked off the event loop."""
    keys = request.app[KEYS]
    if all(normalize_short_code(text) is not None for text in texts):
        return [redeem.read_code(text, keys) for text in texts]  # no signature to check
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[CODE_CHECKS], _read_all, texts, keys)


def _read_all(texts: list[str], keys: KeyRing) -> list[tuple[str, ParsedCode | None]]:
    return [redeem.read_code(text, keys) for text in texts]


def _scan_fields(data: dict[str, Any], errors: FieldErrors, prefix: str = "") -> tuple[str, str, datetime | None]:
    scan_id = _scan_id(data, errors, f"{prefix}scan_id")
    text = _code(data, errors, f"{prefix}code")
    return scan_id, text, _scanned_at(data, errors, f"{prefix}scanned_at")


def verdict_json(verdict: Verdict, scan_id: str, now: datetime) -> dict[str, Any]:
    return {
        **verdict.to_dict(),
        "text_es": reason_text(verdict.reason, "es"),
        "text_en": reason_text(verdict.reason, "en"),
        "scan_id": scan_id,
        "server_time": utc_iso(now),
    }


# --- enrolment, time, keys ---------------------------------------------------------------------


@routes.post("/api/v1/gate/enrol")
async def enrol(request: web.Request) -> web.Response:
    body = await json_body(request)
    errors = FieldErrors()
    code = forms.text(body, "enrol_code", errors, max_len=40)
    fingerprint = forms.text(body, "fingerprint", errors, max_len=200, required=False)
    agent_version = forms.text(body, "agent_version", errors, max_len=40, required=False)
    errors.raise_if_any()
    now = terminal_now(request.app)  # the gate licence is valid until the end of the terminal's day
    try:
        kiosk, token = await request.app[DB].write(kiosks.enrol_kiosk, code, fingerprint, agent_version, now)
    except EnrolError as exc:
        raise ApiError(403, exc.code, exc.message) from exc
    return web.json_response(
        {
            "kiosk_id": kiosk["id"],
            "name": kiosk["name"],
            "gate": kiosk["gate"],
            "token": token,
            "server_time": utc_iso(now),
        },
        status=201,
    )


@routes.get("/api/v1/gate/time")
async def server_time(request: web.Request) -> web.Response:
    await _kiosk(request)
    now = _now()
    return web.json_response({"server_time": utc_iso(now), "epoch_ms": int(now.timestamp() * 1000)})


@routes.get("/api/v1/gate/keys")
async def public_keys(request: web.Request) -> web.Response:
    await _kiosk(request)
    keys = await request.app[DB].read(sync.public_keys)
    return web.json_response({"keys": keys, "server_time": utc_iso(_now())})


@routes.get("/api/v1/gate/me")
async def whoami(request: web.Request) -> web.Response:
    kiosk = await _kiosk(request)
    allowed = sorted(kiosk.allowed_itineraries) if kiosk.allowed_itineraries is not None else None
    return web.json_response(
        {
            "kiosk_id": kiosk.id,
            "name": kiosk.name,
            "gate": kiosk.gate,
            "allowed_itineraries": allowed,
            "server_time": utc_iso(_now()),
        }
    )


# --- delta sync --------------------------------------------------------------------------------


@routes.get("/api/v1/gate/sync")
async def delta_sync(request: web.Request) -> web.Response:
    kiosk = await _kiosk(request)
    cursor = int_param(request, "cursor", 0, 2**62)
    limit = int_param(request, "limit", sync.DEFAULT_PAGE, sync.MAX_PAGE, minimum=1)
    now = _now()
    page = await request.app[DB].read(sync.sync_page, cursor, limit)
    request.app[KIOSKS].note_synced(kiosk, page["cursor"])
    page["server_time"] = utc_iso(now)
    response = await _compressed_json(request, page)
    metrics.observe_sync_pull(request, cursor == 0, response)
    return response


async def _compressed_json(request: web.Request, value: Any) -> web.Response:
    """JSON, gzipped at a fast level when the client accepts it, encoded off the event loop.

    A full-sync page is megabytes: encoding it on the loop would stall every redeem for ~0.1 s.
    aiohttp's ``enable_compression`` uses zlib's default level, about three times slower for a
    few percent fewer bytes; for a kiosk's first sync the CPU time is what counts.
    """
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    body, gzipped = await asyncio.get_running_loop().run_in_executor(None, _encode_json, value, gzipped)
    headers = {"Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type="application/json", headers=headers)


def _encode_json(value: Any, gzipped: bool) -> tuple[bytes, bool]:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if gzipped and len(body) > GZIP_MIN_BYTES:
        return gzip.compress(body, SYNC_GZIP_LEVEL, mtime=0), True
    return body, False


# --- online redeem -----------------------------------------------------------------------------


@routes.post("/api/v1/gate/redeem")
async def redeem_online(request: web.Request) -> web.Response:
    registry = request.app[KIOSKS]
    kiosk = await registry.authenticate(request, checked_in_write=True)
    body = await json_body(request)
    errors = FieldErrors()
    scan_id, text, scanned_at = _scan_fields(body, errors)
    errors.raise_if_any()
    keys = request.app[KEYS]
    claim = redeem.claim_code(text, keys)
    now = _now()
    try:
        verdict, used = await request.app[REDEEMS](
            kiosk.id,
            scan_id,
            claim,
            scanned_at or now,
            keys,
            kiosk.allowed_itineraries,
            now,
            lang_of(request),
            kiosk.token_hash if registry.checks_in_write else None,
        )
    except redeem.ScanIdTaken:
        raise ApiError(409, "scan_id_taken", Msg("This scan id was already used by another kiosk.")) from None
    except redeem.KioskRefused as refused:
        raise registry.refused_in_write(kiosk, refused.revoked) from None
    if used:
        request.app[LIVE].notify([verdict.ticket_id])
    metrics.observe_redeem(request, verdict)
    return web.json_response(verdict_json(verdict, scan_id, now))


# --- offline uploads ---------------------------------------------------------------------------


def _offline_item(index: int, raw: Any, errors: FieldErrors) -> tuple[str, str, datetime, bool, Reason] | None:
    prefix = f"scans.{index}."
    if not isinstance(raw, dict):
        errors.add(f"scans.{index}", Msg("Each scan must be a JSON object."))
        return None
    scan_id, text, scanned_at = _scan_fields(raw, errors, prefix)
    accepted = raw.get("accepted")
    if not isinstance(accepted, bool):
        errors.add(f"{prefix}accepted", Msg("Say true or false."))
    try:
        reason = Reason(str(raw.get("reason")))  # a non-string is refused below too
    except ValueError:
        errors.add(f"{prefix}reason", Msg("Unknown reason code."))
        return None
    if isinstance(accepted, bool) and accepted != (reason is Reason.ACCEPTED):
        errors.add(f"{prefix}reason", Msg("The reason does not match the verdict."))
    return scan_id, text, scanned_at or _now(), bool(accepted), reason


@routes.post("/api/v1/gate/scans")
async def upload_scans(request: web.Request) -> web.Response:
    kiosk = await _kiosk(request)
    body = await json_body(request)
    if "pending_uploads" in body:
        request.app[KIOSKS].note_pending(kiosk, body["pending_uploads"])
    raw_scans = body.get("scans")
    if not isinstance(raw_scans, list) or not raw_scans:
        raise ValidationFailed({"scans": Msg("Send a list of scans.")})
    if len(raw_scans) > MAX_BATCH:
        raise ValidationFailed({"scans": Msg("At most %(n)s scans per upload.", {"n": MAX_BATCH})})
    errors = FieldErrors()
    fields = [_offline_item(i, raw, errors) for i, raw in enumerate(raw_scans)]
    # A malformed entry rejects the whole batch (nothing is written): the kiosk keeps it all in
    # its outbox, and the error names the entry, so nothing is lost silently on either side.
    errors.raise_if_any()
    valid = [f for f in fields if f is not None]
    codes = await _read_codes(request, [text for _id, text, *_rest in valid])
    items = [
        uploads.OfflineScan(redeem.ScanInput(scan_id, stored, parsed, scanned_at), accepted, reason)
        for (scan_id, _text, scanned_at, accepted, reason), (stored, parsed) in zip(valid, codes, strict=True)
    ]
    now = _now()
    results: list[dict[str, Any]] = []
    # A few dozen scans per transaction: each holds the write turn for a few milliseconds, so the
    # online redeems of the other gates go in between, when kiosks come back online with a backlog.
    # Each scan is recorded once by its id, so a failure part-way is made good by the kiosk's retry.
    for start in range(0, len(items), OFFLINE_WRITE_CHUNK):
        done, used = await request.app[DB].write(
            uploads.record_offline_scans,
            kiosk.id,
            items[start : start + OFFLINE_WRITE_CHUNK],
            kiosk.allowed_itineraries,
            now,
        )
        results.extend(done)
        request.app[LIVE].notify(used)
    return web.json_response({"results": results, "server_time": utc_iso(now)})


# --- live channel ------------------------------------------------------------------------------


@routes.get("/api/v1/gate/live")
async def live(request: web.Request) -> web.WebSocketResponse:
    kiosk = await request.app[KIOSKS].authenticate(request, allow_query_token=True)
    hub = request.app[LIVE]
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    if not await hub.hello(ws, kiosk.id):
        return ws
    if kiosk.revoked:  # revoked between authentication and registration with the hub
        await hub.disconnect_kiosk(kiosk.id)
    try:
        async for msg in ws:
            # Kiosks only listen; a text message may report the outbox size, anything else is ignored.
            if msg.type == WSMsgType.TEXT:
                _live_message(request, kiosk, msg.data)
    finally:
        hub.forget(ws)
    return ws


def _live_message(request: web.Request, kiosk: KioskState, text: str) -> None:
    try:
        data = json.loads(text)
    except ValueError:
        return
    if isinstance(data, dict) and "pending_uploads" in data:
        request.app[KIOSKS].note_pending(kiosk, data["pending_uploads"])
    kiosk.last_seen = _now().timestamp()
    kiosk.dirty = True
