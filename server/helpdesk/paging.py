"""How the helpdesk and licence lists page: by keyset (``server.tickets.paging``), filters kept in the links.

Pages carry ``?after=`` / ``?before=`` beside their filters; the API answers ``next_after`` (None on
the last page), which the next call sends as ``after``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server.tickets.paging import MAX_PAGE_SIZE, PAGE_SIZE, Keyset, Page


@dataclass(frozen=True)
class ListLinks:
    """A list's filters as its address has them, to build the Older/Newer links (the ``pager`` macro)."""

    filters: dict[str, str] = field(default_factory=dict)

    def link(self, **page: int | None) -> str:
        """The query string of this list, its filters kept, at another page (``after=`` or ``before=``)."""
        params = {**self.filters, **page}
        return "?" + urlencode({k: v for k, v in params.items() if v})


def contains(columns: tuple[str, ...], search: str) -> tuple[str, list[Any]]:
    """The condition (and its values) for rows where any of ``columns`` contains ``search``."""
    return "(" + " OR ".join(f"{c} LIKE ?" for c in columns) + ")", [f"%{search}%"] * len(columns)


def page_size(query: Mapping[str, str]) -> int:
    """``?limit=``, held to 1 … ``MAX_PAGE_SIZE``; blank or not a number is the default size."""
    try:
        return min(max(int(query.get("limit", PAGE_SIZE)), 1), MAX_PAGE_SIZE)
    except ValueError:
        return PAGE_SIZE


def api_paging(request: web.Request) -> dict[str, Any]:
    """The ``at`` and ``limit`` of an API list call."""
    return {"at": Keyset.of(request.query), "limit": page_size(request.query)}


def page_json(page: Page, key: str, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> web.Response:
    """A page of rows under ``key``, with the cursor of the next one."""
    return web.json_response({key: [convert(r) for r in page.rows], "next_after": page.older})
