"""Checking what the server sends before the kiosk stores it: sync pages and live pushes.

The kiosk decides at the gate from what it stored, so one malformed value (a newer or broken
server, a proxy rewriting answers) must not end up in its cache, crash the sync, or stop the
agent from starting again. :func:`checked_page` reads a whole page or push into plain rows and
raises :class:`BadSyncData`, naming the first bad value, before anything is written; the
caller keeps the cache as it was and tries again later.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gate_core.codes import VerifyKey
from gate_core.wire import OPTIONAL_TICKET_COLUMNS, TICKET_COLUMNS, TicketRow

MAX_TEXT = 500
_MAX_ID = 2**63
_FLAG_TYPES = (bool, int)


class BadSyncData(ValueError):
    """The server sent something the kiosk cannot store; the message names the value."""


@dataclass(frozen=True)
class CheckedPage:
    """A page or push whose every value has been checked, as rows ready to store."""

    tickets: list[TicketRow]
    companies: list[tuple[int, str]]
    generations: list[tuple[int, str]]  # services as the JSON list of ids
    services: list[tuple[int, str, str]]
    itineraries: list[tuple[int, str, str, str, int]]
    kiosks: list[tuple[int, str]]
    keys: list[tuple[int, bytes]]
    cursor: int | None

    def parts(self, size: int) -> list[CheckedPage]:
        """The page as parts of at most ``size`` tickets, to store one transaction at a time.

        The first part carries the lookups and keys (which later tickets refer to), only the last
        the cursor: a kiosk stopped half-way asks for the page again, and storing is idempotent.
        """
        if len(self.tickets) <= size:
            return [self]
        chunks = [self.tickets[i : i + size] for i in range(0, len(self.tickets), size)]
        bare = dataclasses.replace(
            self, companies=[], generations=[], services=[], itineraries=[], kiosks=[], keys=[], cursor=None
        )
        return [
            dataclasses.replace(
                self if n == 0 else bare, tickets=chunk, cursor=self.cursor if n == len(chunks) - 1 else None
            )
            for n, chunk in enumerate(chunks)
        ]


def parse_time(text: str) -> datetime:
    """A stored time as an aware datetime (times without an offset are UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _fail(where: str, why: str, value: Any) -> BadSyncData:
    shown = repr(value)
    return BadSyncData(f"{where}: {why}, got {shown[:80]}{'…' if len(shown) > 80 else ''}")


def _id(where: str, value: Any) -> int:
    if type(value) is not int or not 0 < value < _MAX_ID:
        raise _fail(where, "expected a positive whole number", value)
    return value


def _key(where: str, value: str) -> int:
    """A lookup table's key: the id as text (JSON object keys are always text)."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19):
        raise _fail(where, "expected an id", value)
    return _id(where, int(value))


def _text(where: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (not empty and not value):
        raise _fail(where, "expected text", value)
    return value


def _flag(where: str, value: Any) -> int:
    if value not in (0, 1) or isinstance(value, float):  # True/False and 0/1
        raise _fail(where, "expected true or false", value)
    return int(value)


def _is_time(value: Any) -> bool:
    if isinstance(value, str) and len(value) <= 40:
        try:
            parse_time(value).astimezone(UTC)
            return True
        except (ValueError, OverflowError):
            pass
    return False


def _time(where: str, value: Any) -> str:
    if not _is_time(value):
        raise _fail(where, "expected a date and time (ISO 8601)", value)
    return value


def _table(page: Mapping[str, Any], name: str) -> list[tuple[int, Any]]:
    raw = page.get(name)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _fail(name, "expected an object of id → value", raw)
    return [(_key(f"{name}.{str(key)[:24]}", key), value) for key, value in raw.items()]


def _list(where: str, value: Any, lengths: tuple[int, ...]) -> list[Any]:
    if not isinstance(value, list) or len(value) not in lengths:
        raise _fail(where, f"expected a list of {' or '.join(map(str, lengths))} values", value)
    return value


def _picker(columns: list[str]) -> Callable[[list[Any]], tuple]:
    """A row's values in TICKET_COLUMNS order from a row in ``columns``' order (None for an
    optional column an older server does not send)."""
    absent = [name for name in TICKET_COLUMNS if name not in columns]
    where = [columns.index(name) if name in columns else len(columns) + absent.index(name) for name in TICKET_COLUMNS]
    pick = operator.itemgetter(*where)
    if not absent:
        return pick
    padding = [None] * len(absent)
    return lambda raw: pick(raw + padding)


def _tickets(page: Mapping[str, Any]) -> list[TicketRow]:
    raw_tickets = page.get("tickets") or []
    if not isinstance(raw_tickets, list):
        raise _fail("tickets", "expected a list", raw_tickets)
    if not raw_tickets:
        return []
    columns = page.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _fail("columns", "expected the list of ticket column names", columns)
    missing = [name for name in TICKET_COLUMNS if name not in columns and name not in OPTIONAL_TICKET_COLUMNS]
    if missing:
        raise _fail("columns", f"{', '.join(missing)} missing", columns)
    pick = _picker(columns)
    width = len(columns)
    rows = []
    for n, raw in enumerate(raw_tickets):
        if type(raw) is list and len(raw) == width:
            tid, itin, company, gen, printed, deleted, short, used_at, used_by, used_scan, seq = pick(raw)
            # The common case in one expression (a first sync is a million rows); anything it
            # does not pass goes through the checks below, which say what is wrong.
            if (
                type(tid) is int
                and type(itin) is int
                and type(company) is int
                and type(gen) is int
                and type(seq) is int
                and 0 < tid < _MAX_ID
                and 0 < itin < _MAX_ID
                and 0 < company < _MAX_ID
                and 0 < gen < _MAX_ID
                and 0 < seq < _MAX_ID
                and type(printed) in _FLAG_TYPES
                and printed in (0, 1)
                and type(deleted) in _FLAG_TYPES
                and deleted in (0, 1)
                and type(short) is str
                and len(short) <= MAX_TEXT
                and (used_at is None or _is_time(used_at))
                and (used_by is None or type(used_by) is int or type(used_by) is str and len(used_by) <= MAX_TEXT)
                and (used_scan is None or type(used_scan) is str and len(used_scan) <= MAX_TEXT)
            ):
                rows.append(
                    TicketRow(
                        tid,
                        itin,
                        company,
                        gen,
                        int(printed),
                        int(deleted),
                        short,
                        used_at,
                        None if used_by is None else str(used_by),
                        used_scan,
                        seq,
                    )
                )
                continue
        rows.append(_ticket_row(n, raw, width, pick))
    return rows


def _ticket_row(n: int, raw: Any, width: int, pick: Callable[[list[Any]], tuple]) -> TicketRow:
    """One ticket row checked value by value: raises :class:`BadSyncData` naming the first bad one."""
    if not isinstance(raw, list) or len(raw) != width:
        raise _fail(f"tickets[{n}]", f"expected a list of {width} values", raw)
    ticket_id, itinerary_id, company_id, generation_id, printed, deleted, short, used_at, used_by, scan, seq = pick(raw)
    where = f"tickets[{n}]."
    if isinstance(used_by, bool) or not isinstance(used_by, (int, str, type(None))):
        raise _fail(where + "used_by", "expected a kiosk id", used_by)
    return TicketRow(
        _id(where + "id", ticket_id),
        _id(where + "itinerary_id", itinerary_id),
        _id(where + "company_id", company_id),
        _id(where + "generation_id", generation_id),
        _flag(where + "printed", printed),
        _flag(where + "deleted", deleted),
        _text(where + "short_code", short),
        None if used_at is None else _time(where + "used_at", used_at),
        None if used_by is None else _text(where + "used_by", str(used_by)),
        None if scan is None else _text(where + "used_scan_id", scan),
        _id(where + "seq", seq),
    )


def _public_key(where: str, key_id: int, value: Any) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        if raw is not None:
            VerifyKey(key_id, raw)  # 32 bytes that are an Ed25519 point, and a usable key id
            return raw
    except (binascii.Error, ValueError):
        pass
    raise _fail(where, "expected a base64 Ed25519 public key", value)


def checked_page(page: Any) -> CheckedPage:
    """Every value of a sync page or live push, checked; raises :class:`BadSyncData`."""
    if not isinstance(page, Mapping):
        raise _fail("page", "expected a JSON object", page)
    generations = []
    for gen_id, services in _table(page, "generations"):
        where = f"generations.{gen_id}"
        if not isinstance(services, list):
            raise _fail(where, "expected a list of service ids", services)
        generations.append((gen_id, json.dumps([_id(where, s) for s in services])))
    itineraries = []
    for itinerary_id, value in _table(page, "itineraries"):
        where = f"itineraries.{itinerary_id}"
        label, valid_from, valid_until, *active = _list(where, value, (3, 4))
        itineraries.append(
            (
                itinerary_id,
                _text(where + "[0]", label),
                _time(where + "[1]", valid_from),
                _time(where + "[2]", valid_until),
                _flag(where + "[3]", active[0]) if active else 1,
            )
        )
    cursor = page.get("cursor")
    if cursor is not None and (type(cursor) is not int or cursor < 0):
        raise _fail("cursor", "expected a whole number", cursor)
    return CheckedPage(
        tickets=_tickets(page),
        companies=[(i, _text(f"companies.{i}", name)) for i, name in _table(page, "companies")],
        generations=generations,
        services=[
            (i, _text(f"services.{i}[0]", names[0]), _text(f"services.{i}[1]", names[1]))
            for i, value in _table(page, "services")
            for names in [_list(f"services.{i}", value, (2,))]
        ],
        itineraries=itineraries,
        kiosks=[(i, _text(f"kiosks.{i}", name)) for i, name in _table(page, "kiosks")],
        keys=[(i, _public_key(f"keys.{i}", i, value)) for i, value in _table(page, "keys")],
        cursor=cursor,
    )


def checked_itineraries(value: Any) -> list[int] | None:
    """The ``allowed_itineraries`` of ``/gate/me``: None (all) or a list of itinerary ids."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail("allowed_itineraries", "expected a list of itinerary ids", value)
    return [_id("allowed_itineraries", v) for v in value]
