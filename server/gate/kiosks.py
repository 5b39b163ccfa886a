"""Kiosks: creation by a supervisor, enrolment with a one-time code, bearer-token auth, revocation.

Kiosk tokens are stored hashed. :class:`KioskRegistry` keeps ``token hash → KioskState`` in
memory: the kiosk's liveness (last seen, pending uploads, sync cursor) gathered between flushes,
and, on SQLite, its status too, so a request authenticates without touching the database; revoking
marks the cached state at once. The redeem transaction re-checks the status in the database in
any case, so no scan is accepted for a kiosk after its revocation committed.

On PostgreSQL other nodes serve the same kiosks and may revoke one. A message alone (``NOTIFY``)
could arrive after the kiosk's next request, so each request reads the token's row instead (one
indexed read), and a revocation made elsewhere is refused from the kiosk's very next request on,
whichever node takes it. An online redeem skips that read for a kiosk it knows: its own
transaction checks the token and the status (:func:`server.gate.redeem.redeem_scan`), which
took a redeem's server CPU from ~540 to 330–400 µs (``bench.redeem``, two nodes, busy box).
The revoking transaction also announces it (``server.notify.KIOSKS``), so every node closes the
kiosk's live socket at once, even one the kiosk only listens on.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gate_core.clock import utc_iso
from server import forms
from server.accounts.audit import audit
from server.db import Database, one, scalar
from server.forms import FieldErrors, ValidationFailed
from server.helpdesk import licences
from server.i18n import Msg
from server.notify import KIOSKS as KIOSKS_CHANNEL
from server.notify import announce
from server.security import token_hash
from server.sql import Connection
from server.web import ApiError

Db = Connection

TOKEN_PREFIX = "pgk_"
ENROL_CODE_HOURS = 24
# Crockford base32 without I, L, O, U: nothing a person can misread when typing it on a kiosk.
_ENROL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ENROL_GROUPS = 4
_ENROL_GROUP_LEN = 4  # 16 characters = 80 random bits
MAX_PENDING_UPLOADS = 10_000_000


class EnrolError(Exception):
    """A refused enrolment with a stable code (``invalid_enrol_code``, ``expired_enrol_code``)."""

    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def new_enrol_code() -> str:
    raw = "".join(secrets.choice(_ENROL_ALPHABET) for _ in range(_ENROL_GROUPS * _ENROL_GROUP_LEN))
    return "-".join(raw[i : i + _ENROL_GROUP_LEN] for i in range(0, len(raw), _ENROL_GROUP_LEN))


def normalize_enrol_code(text: str) -> str:
    """Upper case without spaces or dashes; O and I/L typed by mistake read as 0 and 1."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t")
    return cleaned.translate(str.maketrans("OIL", "011"))


def new_kiosk_token() -> str:
    # The prefix tells kiosk tokens from portal session tokens at a glance (and in logs).
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# --- supervisor actions ------------------------------------------------------------------------


def validate_kiosk(data: Mapping[str, Any], itinerary_ids: list[Any]) -> dict[str, Any]:
    errors = FieldErrors()
    values: dict[str, Any] = {
        "name": forms.text(data, "name", errors, max_len=60),
        "gate": forms.text(data, "gate", errors, max_len=60, required=False),
    }
    allowed = forms.id_choices(itinerary_ids, "itineraries", errors, Msg("Choose itineraries from the list."))
    values["allowed_itineraries"] = allowed or None
    errors.raise_if_any()
    return values


def create_kiosk(db: Db, values: dict[str, Any], actor_id: int | None, now: datetime) -> tuple[int, str]:
    """A new kiosk awaiting enrolment; returns its id and the one-time enrolment code (shown once)."""
    if scalar(db, "SELECT 1 FROM kiosks WHERE name = ?", (values["name"],)):
        raise ValidationFailed({"name": Msg("A kiosk with this name already exists.")})
    allowed = values.get("allowed_itineraries")
    if allowed:
        placeholders = ",".join("?" * len(allowed))
        found = scalar(db, f"SELECT COUNT(*) FROM itineraries WHERE id IN ({placeholders})", tuple(allowed))
        if found != len(allowed):
            raise ValidationFailed({"itineraries": Msg("Choose itineraries from the list.")})
    code = new_enrol_code()
    kiosk_id = db.execute(
        "INSERT INTO kiosks (name, gate, status, enrol_code_hash, enrol_expires_at, created_at, allowed_itineraries) "
        "VALUES (?, ?, 'pending', ?, ?, ?, ?) RETURNING id",
        (
            values["name"],
            values.get("gate", ""),
            token_hash(normalize_enrol_code(code)),
            (now + timedelta(hours=ENROL_CODE_HOURS)).timestamp(),
            utc_iso(now),
            json.dumps(allowed) if allowed else None,
        ),
    ).fetchone()[0]
    audit(db, "kiosk.created", now=now, user_id=actor_id, detail=values["name"])
    return int(kiosk_id), code


def renew_enrol_code(db: Db, kiosk_id: int, actor_id: int | None, now: datetime) -> tuple[str, str]:
    """A fresh enrolment code for a kiosk that has not enrolled yet (the old one stops working).

    Returns the kiosk's name and the code.
    """
    kiosk = one(db, "SELECT name, status FROM kiosks WHERE id = ?", (kiosk_id,))
    if kiosk is None:
        raise EnrolError("not_found", Msg("Not found."))
    if kiosk["status"] != "pending":
        raise EnrolError("not_pending", Msg("Only a kiosk that has not enrolled yet can get a new code."))
    code = new_enrol_code()
    db.execute(
        "UPDATE kiosks SET enrol_code_hash = ?, enrol_expires_at = ? WHERE id = ?",
        (token_hash(normalize_enrol_code(code)), (now + timedelta(hours=ENROL_CODE_HOURS)).timestamp(), kiosk_id),
    )
    audit(db, "kiosk.enrol_code", now=now, user_id=actor_id, detail=kiosk["name"])
    return kiosk["name"], code


def revoke_kiosk(db: Db, kiosk_id: int, actor_id: int | None, now: datetime) -> dict[str, Any] | None:
    """Retire a kiosk for good: its token and any unused enrolment code stop working."""
    kiosk = one(db, "SELECT id, name, status, token_hash FROM kiosks WHERE id = ?", (kiosk_id,))
    if kiosk is None:
        return None
    if kiosk["status"] != "revoked":
        db.execute(
            "UPDATE kiosks SET status = 'revoked', revoked_at = ?, enrol_code_hash = NULL WHERE id = ?",
            (utc_iso(now), kiosk_id),
        )
        licences.release_kiosk_machine(db, kiosk_id, actor_id, now)  # its licence slot is free again
        audit(db, "kiosk.revoked", now=now, user_id=actor_id, detail=kiosk["name"])
        announce(db, KIOSKS_CHANNEL, str(kiosk_id))  # other nodes close its live socket
    return kiosk


# --- enrolment (the kiosk's side) --------------------------------------------------------------


def enrol_kiosk(
    db: Db, enrol_code: str, fingerprint: str, agent_version: str, now: datetime
) -> tuple[dict[str, Any], str]:
    """Exchange a one-time enrolment code for the kiosk's bearer token; returns (kiosk, token).

    The one place that turns "someone at a kiosk proved they may run one" into a token: the code
    names the kiosk a supervisor created, and the kiosk activates as a machine on the operator's
    licence serial (refused with the licence's reason: ``no_gate_licence``, ``machine_limit``,
    ``serial_expired``…).
    """
    code_hash = token_hash(normalize_enrol_code(enrol_code))
    kiosk = one(
        db,
        "SELECT id, name, gate, status, enrol_expires_at, allowed_itineraries FROM kiosks WHERE enrol_code_hash = ?",
        (code_hash,),
    )
    if kiosk is None or kiosk["status"] != "pending":
        raise EnrolError("invalid_enrol_code", Msg("This enrolment code is not valid (or was already used)."))
    if (kiosk["enrol_expires_at"] or 0) < now.timestamp():
        raise EnrolError(
            "expired_enrol_code", Msg("This enrolment code has expired; ask the supervisor for a new one.")
        )
    # A kiosk is a machine on the operator's licence serial; no serial or no free slot, no token
    # (and the code stays usable once a slot is freed: this transaction rolls back).
    try:
        licences.activate_kiosk_machine(db, kiosk["id"], kiosk["name"], fingerprint, now)
    except licences.LicenceError as exc:
        raise EnrolError(exc.code, exc.message) from exc
    token = new_kiosk_token()
    db.execute(
        "UPDATE kiosks SET status = 'active', token_hash = ?, enrol_code_hash = NULL, enrol_expires_at = NULL, "
        "fingerprint = ?, agent_version = ?, enrolled_at = ?, last_seen_at = ?, last_sync_seq = 0 WHERE id = ?",
        (token_hash(token), fingerprint, agent_version, utc_iso(now), utc_iso(now), kiosk["id"]),
    )
    audit(db, "kiosk.enrolled", now=now, detail=f"{kiosk['name']} {fingerprint}"[:500])
    return kiosk, token


# --- authentication cache ----------------------------------------------------------------------


#: How often each node saves what it heard of its kiosks (last seen, cursors, open live channels), s.
LIVENESS_FLUSH_SECONDS = 5.0


@dataclass
class KioskState:
    """What the hot path needs to know about an authenticated kiosk, plus its unsaved liveness."""

    id: int
    name: str
    gate: str
    status: str
    allowed_itineraries: frozenset[int] | None
    last_seen: float = 0.0
    pending_uploads: int | None = None
    #: The cursor of the last sync page sent to it, not saved yet (the supervisor's "sync lag").
    synced_to: int | None = None
    #: What it last said of its storage (``X-Kiosk-Storage``), not saved yet: True when it cannot save scans.
    storage_fault: bool | None = None
    dirty: bool = False
    #: The hash of the token it authenticated with (a redeem's transaction checks it is still the kiosk's).
    token_hash: str = ""

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"


def _load_kiosk_by_token(db: Db, thash: str) -> dict[str, Any] | None:
    return one(db, "SELECT id, name, gate, status, allowed_itineraries FROM kiosks WHERE token_hash = ?", (thash,))


def _load_kiosks_by_tokens(db: Db, hashes: list[str]) -> dict[str, dict[str, Any]]:
    """token hash → the kiosk's row, for the hashes that still belong to a kiosk."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        for row in db.query(
            "SELECT token_hash, id, name, gate, status, allowed_itineraries FROM kiosks "
            f"WHERE token_hash IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            found[row["token_hash"]] = row
    return found


def _allowed(raw: str | None) -> frozenset[int] | None:
    return frozenset(json.loads(raw)) if raw else None


def save_liveness(db: Db, updates: list[tuple[str, int | None, int | None, bool | None, str | None, int]]) -> None:
    """Persist (last_seen_at, pending_uploads, last_sync_seq, storage_fault, live_seen_at, kiosk_id) for several
    kiosks (None keeps).

    Last seen and the sync cursor only move forward (an enrolment starts the cursor again), so the
    nodes' flushes may come in any order: one that heard of the kiosk earlier never undoes another.
    """
    greatest = db.dialect.greatest
    db.executemany(
        f"UPDATE kiosks SET last_seen_at = {greatest}(COALESCE(last_seen_at, ''), ?), "
        f"pending_uploads = COALESCE(?, pending_uploads), last_sync_seq = {greatest}(last_sync_seq, COALESCE(?, 0)), "
        "storage_fault = COALESCE(?, storage_fault), live_seen_at = COALESCE(?, live_seen_at) WHERE id = ?",
        updates,
    )


class KioskRegistry:
    """In-memory cache of authenticated kiosks, keyed by token hash.

    ``shared``: other nodes write the same database (PostgreSQL), so the status is read again on
    every request rather than trusted from memory.
    """

    def __init__(self, db: Database, *, shared: bool = False) -> None:
        self._db = db
        self._shared = shared
        self._by_hash: dict[str, KioskState] = {}
        #: Called with a kiosk id when it is revoked (the live hub closes its socket).
        self.revoke_listeners: list[Callable[[int], None]] = []
        #: Revocations this process has applied: a read that began before one may be stale.
        self._revocations = 0

    @property
    def checks_in_write(self) -> bool:
        """Whether a write that trusts this cache must check the kiosk's token itself (see :meth:`authenticate`)."""
        return self._shared

    async def authenticate(
        self, request: web.Request, *, allow_query_token: bool = False, checked_in_write: bool = False
    ) -> KioskState:
        """The kiosk behind the request's bearer token; 401 for none/unknown, 403 ``revoked_kiosk``.

        ``checked_in_write``: the request's own transaction checks the token and the status (an
        online redeem, when :attr:`checks_in_write`), so a kiosk known here is not read again first.
        """
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not token and allow_query_token:
            token = request.query.get("token", "")
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            raise ApiError(401, "unauthorized", Msg("A kiosk token is required."))
        thash = token_hash(token)
        state = self._by_hash.get(thash)
        if state is None or (self._shared and not state.revoked and not checked_in_write):
            row = await self._load(thash)
            if row is None:
                self._by_hash.pop(thash, None)  # no kiosk holds this token any more
                raise ApiError(401, "unauthorized", Msg("A kiosk token is required."))
            state = self._apply(thash, row)
        if state.revoked:
            raise ApiError(403, "revoked_kiosk", Msg("This kiosk has been revoked."))
        self._note_request(state, request)
        return state

    def _note_request(self, state: KioskState, request: web.Request) -> None:
        state.last_seen = time.time()
        pending = request.headers.get("X-Pending-Uploads") or request.query.get("pending_uploads")
        if pending is not None:
            self.note_pending(state, pending)
        storage = request.headers.get("X-Kiosk-Storage")
        if storage in ("ok", "fault"):
            state.storage_fault = storage == "fault"
        state.dirty = True

    async def _load(self, thash: str) -> dict[str, Any] | None:
        """A kiosk's row, read again if this process revoked a kiosk during the read (it may be stale)."""
        while True:
            mark = self._revocations
            row = await self._db.read(_load_kiosk_by_token, thash)
            if self._revocations == mark:
                return row

    def _apply(self, thash: str, row: Mapping[str, Any]) -> KioskState:
        """The cached state for ``thash``, created or brought up to date from its row."""
        state = self._by_hash.get(thash)
        if state is None:
            allowed = _allowed(row["allowed_itineraries"])
            state = KioskState(row["id"], row["name"], row["gate"], row["status"], allowed, token_hash=thash)
            self._by_hash[thash] = state
            return state
        state.name, state.gate = row["name"], row["gate"]
        state.allowed_itineraries = _allowed(row["allowed_itineraries"])
        if row["status"] == "revoked" and not state.revoked:
            self._mark_revoked(state.id)  # revoked elsewhere: its sockets here close too
        elif not state.revoked:
            state.status = row["status"]  # revocation is final, whatever a stale read says
        return state

    async def catch_up(self) -> None:
        """Re-read every cached kiosk (after this node may have missed announcements)."""
        hashes = list(self._by_hash)
        rows = await self._db.read(_load_kiosks_by_tokens, hashes) if hashes else {}
        for thash in hashes:
            row = rows.get(thash)
            if row is None:
                self._by_hash.pop(thash, None)  # no kiosk holds this token any more: next use reads the database
            elif thash in self._by_hash:
                self._apply(thash, row)

    def refused_in_write(self, state: KioskState, revoked: bool) -> ApiError:
        """What to answer when a write found the token no longer the kiosk's: revoked (403), or replaced by
        a new enrolment (401); this cache learns it too."""
        if revoked:
            self._mark_revoked(state.id)
            return ApiError(403, "revoked_kiosk", Msg("This kiosk has been revoked."))
        self._by_hash.pop(state.token_hash, None)
        return ApiError(401, "unauthorized", Msg("A kiosk token is required."))

    def revoked_elsewhere(self, payload: str) -> None:
        """Another node announced a revocation (``server.notify.KIOSKS``, payload: the kiosk id)."""
        if payload.isdigit():
            self._mark_revoked(int(payload))

    @staticmethod
    def note_pending(state: KioskState, value: Any) -> None:
        """Remember how many scans wait in the kiosk's outbox (ignored when not a sane number)."""
        try:
            count = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e400 is infinity
            return
        if 0 <= count <= MAX_PENDING_UPLOADS:
            state.pending_uploads = count
            state.dirty = True

    @staticmethod
    def note_synced(state: KioskState, cursor: int) -> None:
        """Remember the cursor a sync page brought the kiosk to; saved with its liveness.

        Not written per request: a kiosk pulls every few seconds, and a sync, a read, keeps
        working when the disk is full.
        """
        state.synced_to = cursor
        state.dirty = True

    def revoke(self, kiosk_id: int) -> None:
        """Refuse the kiosk from its very next request on (call after ``revoke_kiosk`` committed).

        Other nodes read the status on each request, and close its sockets when they hear the
        transaction's announcement.
        """
        self._mark_revoked(kiosk_id)

    def _mark_revoked(self, kiosk_id: int) -> None:
        self._revocations += 1
        for state in self._by_hash.values():
            if state.id == kiosk_id:
                state.status = "revoked"
        for listener in self.revoke_listeners:
            listener(kiosk_id)

    def live_state(self) -> dict[int, KioskState]:
        """Cached state per kiosk id (fresher than the database for last seen and pending uploads)."""
        return {state.id: state for state in self._by_hash.values()}

    async def flush(self, live_here: Collection[int] = ()) -> None:
        """Write unsaved liveness (last seen, pending uploads, sync cursor) in one transaction; for the kiosks
        in ``live_here`` (their live channel is open on this node), also that it was open when last seen.

        When the write fails (a full disk), those kiosks stay unsaved and the next flush tries again.
        """
        flushed = [state for state in self._by_hash.values() if state.dirty]
        updates = []
        for state in flushed:
            state.dirty = False
            seen = utc_iso(datetime.fromtimestamp(state.last_seen, UTC)) if state.last_seen else ""
            live = seen if state.id in live_here and seen else None
            updates.append((seen, state.pending_uploads, state.synced_to, state.storage_fault, live, state.id))
        if not updates:
            return
        try:
            await self._db.write(save_liveness, updates)
        except BaseException:
            for state in flushed:
                state.dirty = True
            raise
        for state, (_seen, _pending, cursor, fault, _live, _id) in zip(flushed, updates, strict=True):
            # Saved: written once, not again with every later flush (another node may hear newer).
            if state.synced_to == cursor:
                state.synced_to = None
            if state.storage_fault is fault:
                state.storage_fault = None


KIOSKS = web.AppKey("gate_kiosks", KioskRegistry)
