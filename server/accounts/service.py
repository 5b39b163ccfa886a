"""The accounts names other areas import from here; the services live in one module per resource.

``sessions`` (login, sessions, profiles), ``passwords``, ``registration``, ``approvals``,
``registry`` (the billing registry), ``audit``, and ``users`` (what they share). New code imports
from those modules; these names stay until the areas below stop importing them from here.
"""

from __future__ import annotations

from server.accounts.audit import audit
from server.accounts.registry import list_companies
from server.accounts.sessions import create_session
from server.accounts.users import ROLE_LABELS, check_unique, invite_user

# server.helpdesk.company_users imports it under its old private name.
_check_unique = check_unique

__all__ = ["ROLE_LABELS", "_check_unique", "audit", "create_session", "invite_user", "list_companies"]
