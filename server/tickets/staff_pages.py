"""What the staff pages of the tickets area share: list filters, the result after a redirect, and
actions confirmed on a page of their own (what will happen, in the reader's language, before it does).

Every successful form post answers 303 to a list (POST → redirect → GET) with the result as a flash
message (``server.flash``): Back and Refresh never send it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server.flash import redirect_with_flash
from server.forms import ValidationFailed
from server.i18n import Msg
from server.tickets import service as svc
from server.tickets.paging import Keyset
from server.web import DB, Principal, form_body, not_found, path_id, render_page, require


@dataclass(frozen=True)
class ListQuery:
    """A staff list's search, status filter and page, read from its address."""

    search: str = ""
    status: str = ""
    at: Keyset = Keyset()

    @classmethod
    def of(cls, query: Mapping[str, str], statuses: tuple[str, ...]) -> ListQuery:
        status = query.get("status", "")
        search = " ".join(query.get("q", "").split())[:100]
        return cls(search, status if status in statuses else "", Keyset.of(query))

    def link(self, **page: int | None) -> str:
        """The query string of this list at another page (``after=`` or ``before=``)."""
        params = {"q": self.search, "status": self.status, **page}
        return "?" + urlencode({k: v for k, v in params.items() if v})


Perform = Callable[[Principal, int, Mapping[str, Any], datetime], Awaitable[Any]]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str = "text"
    required: bool = True


@dataclass(frozen=True)
class Action:
    """A change to one row, asked for on a page that says what it will do; it runs on that page's post."""

    roles: tuple[str, ...]
    path_param: str
    load: Callable[..., Any]  #: ``load(db, row_id)`` → the row or None
    title: str
    explain: Callable[[dict[str, Any], web.Request], list[Msg]]
    submit: str
    back: str
    fields: tuple[Field, ...] = ()
    defaults: Callable[[dict[str, Any], web.Request], dict[str, str]] = field(default=lambda row, request: {})


async def _row(request: web.Request, action: Action) -> dict[str, Any]:
    row = await request.app[DB].read(action.load, path_id(request, action.path_param))
    if row is None:
        raise not_found()
    return row


def _action_page(
    request: web.Request, action: Action, row: dict[str, Any], status: int = 200, **extra: Any
) -> web.Response:
    context = {
        "action": action,
        "row": row,
        "explanation": action.explain(row, request),
        "values": extra.pop("values", None) or action.defaults(row, request),
        "errors": extra.pop("errors", {}),
        **extra,
    }
    return render_page(request, "tickets/staff_action.html", context, status)


async def show_action(request: web.Request, action: Action) -> web.Response:
    require(request, *action.roles)
    return _action_page(request, action, await _row(request, action))


async def run_action(
    request: web.Request,
    action: Action,
    perform: Perform,
    success: Msg,
) -> web.Response:
    """Run ``perform(principal, row_id, form, now)``; a refusal re-shows the page with why, nothing changed."""
    principal = require(request, *action.roles)
    row = await _row(request, action)
    form = await form_body(request)
    try:
        await perform(principal, row["id"], form, datetime.now(UTC))
    except ValidationFailed as exc:
        values = {f.name: str(form.get(f.name, ""))[:200] for f in action.fields}
        return _action_page(request, action, row, 400, errors=exc.errors, values=values)
    except svc.TicketError as exc:
        if exc.code == "not_found":
            raise not_found() from None
        return _action_page(request, action, await _row(request, action), 409, problem=exc.message)
    raise redirect_with_flash(request, action.back, success)


def writer(request: web.Request, fn: Callable[..., Any], validate: Callable[[Any], Any] | None = None) -> Perform:
    """``perform`` for :func:`run_action`: ``fn(db, row_id, [validate(form),] actor_id, now=)`` in one write."""

    async def perform(principal: Principal, row_id: int, form: Mapping[str, Any], now: datetime) -> Any:
        checked = () if validate is None else (validate(form),)
        return await request.app[DB].write(fn, row_id, *checked, principal.user_id, now=now)

    return perform


def action_routes(
    routes: web.RouteTableDef,
    path: str,
    action: Action,
    perform: Callable[[web.Request], Perform],
    success: Msg,
) -> None:
    """The page that asks for ``action`` at ``path`` (GET) and runs it (POST)."""

    async def ask(request: web.Request) -> web.Response:
        return await show_action(request, action)

    async def run(request: web.Request) -> web.Response:
        return await run_action(request, action, perform(request), success)

    routes.get(path)(ask)
    routes.post(path)(run)
