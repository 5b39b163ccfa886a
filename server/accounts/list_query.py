"""What the accounts area's lists read from a query string alike: optional ids and days, page sizes.

The user list, the billing registry and the audit log page by keyset and answer a bad value with a
message on its field (a 400 in the API, the message beside the filters on the page).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server import forms
from server.forms import FieldErrors
from server.i18n import Msg
from server.openapi import query_param

#: Rows per page of a list; the API may ask for fewer or more, up to ``MAX_PAGE``.
PAGE_SIZE = 50
MAX_PAGE = 200


def optional_id(params: Mapping[str, Any], name: str, errors: FieldErrors) -> int | None:
    """The id in ``name``, None when blank; anything that cannot be an id is "not found" on the field."""
    raw = str(params.get(name) or "").strip()
    value = forms.parse_id(raw) if raw else None
    if raw and value is None:
        errors.add(name, Msg("Not found."))
    return value


def page_size(params: Mapping[str, Any], errors: FieldErrors) -> int:
    """``limit``: 1 to ``MAX_PAGE`` rows, ``PAGE_SIZE`` when blank."""
    return forms.integer(params, "limit", errors, minimum=1, maximum=MAX_PAGE, required=False) or PAGE_SIZE


def paging_params(rows: str) -> list[dict[str, Any]]:
    """The OpenAPI parameters that page a list of ``rows`` (a plural noun)."""
    return [
        query_param("after", {"type": "integer"}, "the next_after of the previous page"),
        query_param("limit", {"type": "integer"}, f"{rows} per page, 1 to {MAX_PAGE} (default {PAGE_SIZE})"),
    ]


def rows_and_cursor(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """A page from ``limit + 1`` fetched rows, and the next page's cursor (the last row's id; None on the last)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1]["id"] if more else None
