"""Field validation shared by HTML forms and the JSON API.

A service collects every field's problem in a :class:`FieldErrors` and raises
:class:`ValidationFailed` before writing anything, so bad input never leaves a partial write.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from server.i18n import Msg

EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{5,22}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9._-]{3,40}$")
TAX_ID_RE = re.compile(r"^[A-Za-z0-9&Ññ-]{8,20}$")

REQUIRED = Msg("This field is required.")


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
