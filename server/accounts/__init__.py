"""Accounts: billing registry, registration, approvals, sign-in and sessions, passwords, audit log.

Each resource has a service module (the rules and the SQL) and a ``*_views`` module (its pages);
``api`` holds the JSON API and ``docs`` its OpenAPI entries. ``setup(app)`` registers them.
"""

from __future__ import annotations

from aiohttp import web

from server.accounts import (
    api,
    approval_views,
    audit_api,
    audit_views,
    docs,
    integrations_api,
    integrations_views,
    my_account_api,
    my_account_views,
    password_views,
    registration_sms_views,
    registration_views,
    registry_api,
    registry_views,
    session_views,
    user_admin_api,
    user_admin_views,
)
from server.i18n import N_
from server.menu import MENU, MenuEntry
from server.openapi import API_DOCS


def setup(app: web.Application) -> None:
    """Register the account pages, the accounts API and its OpenAPI entries."""
    docs.document_routes(app[API_DOCS])
    registry_api.document_routes(app[API_DOCS])
    audit_api.document_routes(app[API_DOCS])
    user_admin_api.document_routes(app[API_DOCS])
    app[MENU].add(MenuEntry(N_("Users"), "/admin/users", ("admin",)))
    integrations_api.document_routes(app[API_DOCS])
    my_account_api.document_routes(app[API_DOCS])
    app[MENU].add(MenuEntry(N_("My account"), "/account", ()))
    app[MENU].add(MenuEntry(N_("Integration tokens"), "/admin/integrations", ("admin",)))
    for module in (
        session_views,
        password_views,
        registration_views,
        registration_sms_views,
        approval_views,
        audit_views,
        audit_api,
        registry_views,
        registry_api,
        user_admin_views,
        user_admin_api,
        api,
        integrations_views,
        integrations_api,
        my_account_views,
        my_account_api,
    ):
        app.router.add_routes(module.routes)
