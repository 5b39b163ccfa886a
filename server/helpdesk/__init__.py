"""Helpdesk and licences: service tickets, serials, machines, policies, company users.

``setup(app)`` reads the helpdesk settings, adds the pages and API routes, the menu entries and
OpenAPI entries, and — when an inbound SMTP port is configured — the receiver that files replies
by e-mail into ticket threads (owned by a cleanup context).
"""

from __future__ import annotations

from aiohttp import web

from server.helpdesk import (
    docs,
    licence_api,
    licence_views,
    ticket_api,
    ticket_views,
    user_api,
    user_views,
)
from server.helpdesk.inbound import inbound_ctx
from server.helpdesk.settings import HELPDESK_SETTINGS, settings_for
from server.i18n import N_
from server.menu import MENU, MenuEntry
from server.openapi import API_DOCS
from server.web import CONFIG, PORTAL_CUSTOMER_ROLES

CUSTOMER = PORTAL_CUSTOMER_ROLES  # prospects too: the vendor portal gives them the helpdesk


def setup(app: web.Application) -> None:
    """Register the helpdesk/licence routes, menu entries, API docs and the inbound mail receiver."""
    app[HELPDESK_SETTINGS] = settings_for(app[CONFIG])
    app.cleanup_ctx.append(inbound_ctx)
    for module in (ticket_views, ticket_api, licence_views, licence_api, user_views, user_api):
        app.router.add_routes(module.routes)
    for label, href, roles in (
        # Not "Tickets" nor "My tickets": the gate tickets sit beside these in the customer's menu.
        (N_("Support tickets"), "/helpdesk/tickets", CUSTOMER),
        (N_("Licences"), "/licences", (*CUSTOMER, "gate_supervisor", "admin")),
        (N_("Policies"), "/policies", CUSTOMER),
        (N_("Company users"), "/company/users", ("customer_admin",)),
        (N_("Helpdesk console"), "/helpdesk/console", ("helpdesk_agent", "admin")),
        (N_("Licences and policies"), "/admin/licences", ("admin",)),
    ):
        app[MENU].add(MenuEntry(label, href, roles))
    docs.document_routes(app[API_DOCS])
