"""Field validation shared by HTML forms and the JSON API.

A service collects every field's problem in a :class:`FieldErrors` and raises
:class:`ValidationFailed` before writing anything, so bad input never leaves a partial write.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from server.i18n import Msg

EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{5,22}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9._-]{3,40}$")
TAX_ID_RE = re.compile(r"^[A-Za-z0-9&Ññ-]{8,20}$")

REQUIRED = Msg("This field is required.")


#: Text no database column takes: PostgreSQL refuses a NUL in text, and a lone surrogate (JSON's
#: ``"\ud800"``, half of a character) has no UTF-8 form for either engine's driver to send.
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = Msg("This text holds an invalid character (a NUL or half of a character); remove it.")
#: Every whole-number column is 64 bits on both engines (INTEGER on SQLite, BIGINT on PostgreSQL).
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
INTEGER_OUT_OF_RANGE = Msg("Enter a number from %(min)s to %(max)s.", {"min": MIN_INTEGER, "max": MAX_INTEGER})


def storable(value: str) -> bool:
    """False when ``value`` holds a character no text column can take (checked where input enters)."""
    return _UNSTORABLE_RE.search(value) is None


def unstorable_fields(pairs: Iterable[tuple[str, Any]]) -> dict[str, Msg]:
    """Field name → why, for each text value of ``pairs`` (a query, a form) that cannot be stored."""
    return {
        readable_text(name): UNSTORABLE_TEXT
        for name, value in pairs
        if not storable(name) or (isinstance(value, str) and not storable(value))
    }


def unstorable_json(document: Any, *, numbers_only: bool = False) -> dict[str, Msg]:
    """Path → why, for each string or whole number of a parsed JSON document that no column could store:
    text with a NUL or a lone surrogate (unless ``numbers_only``), an integer beyond 64 bits.

    A value in a list is named by the list (``services``), a field of an object in a list by its place
    (``scans.3.code``). Walked with a stack, not recursion: a document nested as deep as the parser
    allows must not overflow here.
    """
    problems: dict[str, Msg] = {}
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not numbers_only and not storable(value):
                problems[path or "body"] = UNSTORABLE_TEXT
        elif isinstance(value, int) and not isinstance(value, bool):
            if not MIN_INTEGER <= value <= MAX_INTEGER:
                problems[path or "body"] = INTEGER_OUT_OF_RANGE
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{readable_text(key)}" if path else readable_text(key)
                if storable(key):
                    stack.append((name, item))
                else:
                    problems[name] = UNSTORABLE_TEXT
        elif isinstance(value, list):
            for index, item in enumerate(value):
                nested = isinstance(item, dict | list)
                stack.append((f"{path}.{index}" if path and nested else path or str(index), item))
    return problems


#: What the database says of a value it cannot take (PostgreSQL's SQLSTATE): a character it has no
#: encoding for, a number beyond its column, text too long for its column or for an index entry.
_REFUSED_VALUE_STATES = ("22021", "22P05", "22003", "22001", "54000")


def is_refused_value(exc: BaseException) -> bool:
    """True when the database (or its driver) refused a value of the request rather than failing.

    The input checks keep such values out; this is what is left (a value built from several fields,
    a path the checks do not see), answered 400 after the transaction rolled back, never a 500.
    """
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in _REFUSED_VALUE_STATES
    if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "DataError":
        return True  # psycopg refuses a NUL itself, before sending (no SQLSTATE then)
    if isinstance(exc, UnicodeEncodeError):
        return exc.reason == "surrogates not allowed"
    return isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc)


def refuse_unstorable_values(pairs: Iterable[tuple[str, Any]]) -> None:
    """Raise :class:`ValidationFailed` naming each field of ``pairs`` (a query, a form) that cannot be stored."""
    if problems := unstorable_fields(pairs):
        raise ValidationFailed(problems)


class _LongNumber(Exception):
    """A whole number of 19 digits or more: it may be past 64 bits."""


def _whole_number(literal: str) -> int:
    if len(literal.lstrip("-")) > 18:
        raise _LongNumber
    return int(literal)


#: Parses as ``json.loads`` does (one decoder, made once), stopping at a number that may be past 64 bits.
_DECODER = json.JSONDecoder(parse_int=_whole_number)


def load_storable_json(text: str, *, numbers_only: bool = False) -> Any:
    """``json.loads(text)`` (``ValueError`` when it is not JSON), raising :class:`ValidationFailed` that names
    each value no column can store (see :func:`unstorable_json`).

    The document is walked only when it may hold one: a NUL or a lone surrogate comes in as a ``\\u``
    escape (or, non-ASCII, through an odd charset), a long number stops the first parse. Most bodies, every
    kiosk's redeem among them, are spared the walk (as costly as the parse itself).
    """
    try:
        document, long_number = _DECODER.decode(text), False
    except _LongNumber:
        document, long_number = json.loads(text), True
    texts = not numbers_only and ("\\u" in text or not text.isascii())
    if (long_number or texts) and (problems := unstorable_json(document, numbers_only=not texts)):
        raise ValidationFailed(problems)
    return document


class ValidationFailed(Exception):
    """One or more fields are invalid; ``errors`` maps field name → message."""

    def __init__(self, errors: dict[str, Msg]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class FieldErrors(dict[str, Msg]):
    def add(self, field: str, message: Msg) -> None:
        self.setdefault(field, message)

    def raise_if_any(self) -> None:
        if self:
            raise ValidationFailed(dict(self))


def readable_text(value: str) -> str:
    """Text from an HTTP header (a file name, a cookie) as a person would read it.

    aiohttp keeps header bytes that are not UTF-8 as lone surrogates, which no page or database
    can encode; each such byte becomes U+FFFD instead.
    """
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that did not come from a header byte
        raw = value.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def clean_text(value: Any) -> str:
    """One line of typed or scanned text: no control characters or lone surrogates, trimmed, NFC."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""
    if value.isascii() and value.isprintable():
        return value.strip()  # nothing to remove or normalise (every redeem's code: 5 µs saved)
    # Control characters (other than none) never belong in a single-line field.
    value = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    return unicodedata.normalize("NFC", value.strip())


def text(
    data: Mapping[str, Any],
    name: str,
    errors: FieldErrors,
    *,
    max_len: int = 200,
    min_len: int = 1,
    required: bool = True,
    multiline: bool = False,
) -> str:
    raw = data.get(name)
    if multiline and isinstance(raw, str):
        value = "\n".join(clean_text(line) for line in raw.replace("\r\n", "\n").split("\n")).strip()
    else:
        value = clean_text(raw)
    if not value:
        if required:
            errors.add(name, REQUIRED)
        return ""
    if len(value) > max_len:
        errors.add(name, Msg("At most %(n)s characters.", {"n": max_len}))
    elif len(value) < min_len:
        errors.add(name, Msg("At least %(n)s characters.", {"n": min_len}))
    return value


def email(data: Mapping[str, Any], name: str, errors: FieldErrors, *, required: bool = True) -> str:
    value = text(data, name, errors, max_len=254, required=required).lower()
    if value and name not in errors and not EMAIL_RE.match(value):
        errors.add(name, Msg("Enter a valid e-mail address."))
    return value


def phone(data: Mapping[str, Any], name: str, errors: FieldErrors, *, required: bool = True) -> str:
    value = text(data, name, errors, max_len=25, required=required)
    if value and name not in errors and not PHONE_RE.match(value):
        errors.add(name, Msg("Enter a valid phone number (digits, optional +)."))
    return re.sub(r"[ ()-]", "", value)


def phone_digits(value: str) -> str:
    """A phone as its digits alone, however it was written (``+593 (4) 000-0000`` → ``59340000000``):
    the one form in which two spellings of a number compare, and are counted, as the same phone."""
    return "".join(c for c in value if c.isascii() and c.isdigit())


def phone_confirmation(data: Mapping[str, Any], name: str, first: str, errors: FieldErrors) -> None:
    """Check that field ``name`` repeats the phone ``first`` (as :func:`phone` cleaned it), however
    either was written: the same number with other spaces, dashes, brackets or ``+`` is the same."""
    value = data.get(name)
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        errors.add(name, REQUIRED)
    elif first and phone_digits(value) != phone_digits(first):
        errors.add(name, Msg("The phone numbers do not match."))


def tax_id(data: Mapping[str, Any], name: str, errors: FieldErrors) -> str:
    value = text(data, name, errors, max_len=20).upper()
    if value and name not in errors and not TAX_ID_RE.match(value):
        errors.add(name, Msg("Enter a valid tax id (RUC/RFC): 8 to 20 letters and digits."))
    return value


def username(data: Mapping[str, Any], name: str, errors: FieldErrors) -> str:
    value = text(data, name, errors, max_len=40)
    if value and name not in errors and not USERNAME_RE.match(value):
        errors.add(name, Msg("3 to 40 letters, digits, dots, dashes or underscores."))
    return value


def confirmation(data: Mapping[str, Any], name: str, first: str, errors: FieldErrors, message: Msg) -> None:
    """Check that field ``name`` repeats ``first`` exactly (e-mail, phone, password confirmations)."""
    value = data.get(name)
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        errors.add(name, REQUIRED)
    elif first and value.lower().replace(" ", "") != first.lower().replace(" ", ""):
        errors.add(name, message)


def integer(
    data: Mapping[str, Any], name: str, errors: FieldErrors, *, minimum: int, maximum: int, required: bool = True
) -> int | None:
    raw = data.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            errors.add(name, REQUIRED)
        return None
    if isinstance(raw, bool):
        errors.add(name, Msg("Enter a whole number."))
        return None
    try:
        value = int(raw.strip()) if isinstance(raw, str) else int(raw)
        if isinstance(raw, float) and raw != value:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        errors.add(name, Msg("Enter a whole number."))
        return None
    if not minimum <= value <= maximum:
        errors.add(name, Msg("Enter a number from %(min)s to %(max)s.", {"min": minimum, "max": maximum}))
        return None
    return value


#: SQLite integers stop at 2**63 - 1; a bigger "id" in a URL or form must be "not found", not a crash.
MAX_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """A positive database id from a path segment or form field, or None when it cannot be one."""
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def id_choices(raws: list[Any], name: str, errors: FieldErrors, message: Msg) -> list[int]:
    """The distinct ids chosen from a list (checkboxes, a multi-select, a JSON array), sorted.

    Blank entries are skipped; anything that cannot be an id adds ``message`` to ``name``.
    """
    chosen: set[int] = set()
    for raw in raws:
        if not str(raw).strip():
            continue
        value = parse_id(raw)
        if value is None:
            errors.add(name, message)
        else:
            chosen.add(value)
    return sorted(chosen)


def mask_email(address: str) -> str:
    """``jperez@empresa.com`` → ``j****z@e*****a.com`` so a registrant can recognise, not read, it."""
    local, _, domain = address.partition("@")
    host, dot, tld = domain.rpartition(".")

    def hide(part: str) -> str:
        if len(part) <= 2:
            return part[:1] + "*"
        return part[0] + "*" * (len(part) - 2) + part[-1]

    return f"{hide(local)}@{hide(host)}{dot}{tld}"


#: Far from any event, and far enough from the calendar's ends that a day's midnight in any time zone
#: (and the day after) still exists.
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def optional_day(params: Mapping[str, Any], name: str, errors: FieldErrors) -> date | None:
    """The ``YYYY-MM-DD`` day in ``name``, None when blank."""
    raw = str(params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or not _FIRST_DAY <= value <= _LAST_DAY:
        errors.add(name, Msg("Enter a date like 2026-11-24."))
        return None
    return value
